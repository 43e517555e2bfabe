"""第14章: (n, n) のスコア行列を作らずに注意を計算する。

naive_attention はスコア行列 (..., n, n) を丸ごと作る。
tiled_attention はクエリとキーをタイル（block_size 個ずつ）に分け、
オンラインの softmax で途中の結果を更新しながら足し込む。
FlashAttention（Dao et al., 2022）の考え方を、純粋な PyTorch で
書いたものである。速くするための実装ではない。

>>> import torch
>>> _ = torch.manual_seed(0)
>>> q, k, v = (torch.randn(2, 3, 50, 8) for _ in range(3))
>>> ref = naive_attention(q, k, v)
>>> torch.allclose(tiled_attention(q, k, v, 16), ref, atol=1e-6)
True
>>> ref = naive_attention(q, k, v, causal=True)
>>> out = tiled_attention(q, k, v, 16, causal=True)
>>> torch.allclose(out, ref, atol=1e-6)
True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def naive_attention(
    q: Tensor, k: Tensor, v: Tensor, causal: bool = False
) -> Tensor:
    """softmax(q kᵀ / √d) v。スコア (..., n, n) を丸ごと作る。"""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if causal:
        n = q.size(-2)
        keep = torch.ones(n, n, dtype=torch.bool).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    return scores.softmax(dim=-1) @ v


def tiled_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    block_size: int = 128,
    causal: bool = False,
) -> Tensor:
    """naive_attention と同じ値を、(block, block) のタイルだけで計算する。

    クエリのタイルごとに、行ごとの最大値 m、指数の和 l、値の重み付き
    和 acc を持ち、キーのタイルを 1 枚読むたびに更新する。
    最大値が大きくなったら、それまでの l と acc を exp(m_old - m_new)
    倍して、新しい最大値を基準にした値へ直す。
    """
    n, scale = q.size(-2), 1 / math.sqrt(q.size(-1))
    out = torch.empty_like(q)
    for i in range(0, n, block_size):
        qi = q[..., i : i + block_size, :] * scale
        rows = (*qi.shape[:-1], 1)
        m = torch.full(rows, float("-inf"), dtype=q.dtype)
        # l は論文の記号に合わせた名前（E741 は紛らわしい名前の警告）
        l = torch.zeros(rows, dtype=q.dtype)  # noqa: E741
        acc = torch.zeros_like(qi)
        # 因果マスクなら、クエリのタイルより後ろのキーは読まない
        stop = min(i + block_size, n) if causal else n
        for j in range(0, stop, block_size):
            s = qi @ k[..., j : j + block_size, :].transpose(-2, -1)
            if causal and j + block_size > i:
                qpos = torch.arange(i, i + s.size(-2))[:, None]
                kpos = torch.arange(j, j + s.size(-1))[None, :]
                s = s.masked_fill(kpos > qpos, float("-inf"))
            m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
            p = torch.exp(s - m_new)
            fix = torch.exp(m - m_new)  # 古い基準から新しい基準へ
            l = l * fix + p.sum(dim=-1, keepdim=True)  # noqa: E741
            acc = acc * fix + p @ v[..., j : j + block_size, :]
            m = m_new
        out[..., i : i + block_size, :] = acc / l
    return out
