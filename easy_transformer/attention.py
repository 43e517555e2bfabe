"""注意機構（第2部・第3部）。

マスクの作り方、縮小付き内積注意（scaled dot-product attention）、それを
束ねる `MultiHeadAttention`（第9章）、生成を速くする KV キャッシュ（後の
部で使う）の順に並べる。`MultiHeadAttention` は n_kv_heads で GQA
（キーと値のヘッドを複数のクエリのヘッドで共有する。第17章）にもなる。
GQA でキーと値を複製する `repeat_kv` は、それを使う `MultiHeadAttention`
のすぐ前に置く。

マスクはこのパッケージのどこでも同じ約束で扱う:
(..., q_len, k_len) にブロードキャスト（broadcast）できる bool の
テンソルで、True が「注意してよい」位置。
これは F.scaled_dot_product_attention の bool マスクと同じ向きで、
nn.MultiheadAttention の key_padding_mask（True が隠す）とは逆向き。
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from easy_transformer.embedding import RotaryEmbedding


def causal_mask(
    q_len: int,
    k_len: int | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """因果マスク (q_len, k_len): クエリは自分より後ろのキーを見ない。

    k_len > q_len のとき（KV キャッシュに過去のキーがある）は、クエリが
    キーの列の末尾に並んでいるとみなす。
    """
    k_len = q_len if k_len is None else k_len
    ones = torch.ones(q_len, k_len, dtype=torch.bool, device=device)
    return ones.tril(diagonal=k_len - q_len)


def padding_mask(ids: Tensor, pad_id: int) -> Tensor:
    """パディングのキーを隠すマスク (batch, 1, 1, seq) を ID から作る。

    真ん中の 2 つの 1 は、ヘッドとクエリの次元へブロードキャストするため。
    """
    return (ids != pad_id)[:, None, None, :]


def combine_masks(*masks: Tensor | None) -> Tensor | None:
    """マスクを論理積で 1 つにまとめる（None は「何も隠さない」）。"""
    combined: Tensor | None = None
    for mask in masks:
        if mask is not None:
            combined = mask if combined is None else combined & mask
    return combined


def check_mask(mask: Tensor, scores_shape: torch.Size) -> None:
    """マスクが bool で、スコアの形 (batch, heads, q, k) に合うか。

    合うとは、ブロードキャストできること。
    """
    if mask.dtype != torch.bool:
        raise TypeError(
            f"マスクは bool（True が注意してよい位置）で渡してください。"
            f"いまは {mask.dtype} です。0/1 の整数なら mask.bool() で、"
            "加算型の float マスク（0 と -inf）なら mask == 0 で"
            "変換できます。"
        )
    # ブロードキャストの規則: 右端からそろえて、
    # 各次元が 1 か相手と同じ大きさ
    pairs = zip(reversed(mask.shape), reversed(scores_shape), strict=False)
    fits = mask.dim() <= len(scores_shape) and all(
        m in (1, s) for m, s in pairs
    )
    if not fits:
        raise ValueError(
            f"マスクの形 {tuple(mask.shape)} が注意のスコアの形 "
            f"(batch, heads, q_len, k_len) = {tuple(scores_shape)} に"
            "ブロードキャストできません。因果マスクは (q_len, k_len)、"
            "パディングのマスクは padding_mask() の (batch, 1, 1, k_len) に"
            "してください。"
        )


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    dropout_p: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """softmax(q kᵀ / √d_k) v を計算し、(出力, 注意の重み) を返す。

    q: (..., q_len, d_k)、k: (..., k_len, d_k)、v: (..., k_len, d_v)。
    すべてのキーが隠された行は、F.scaled_dot_product_attention に
    合わせて重みを 0 にする（出力も 0）。
    """
    # √d_k で割らないと、次元が大きいほど内積の分散が大きくなり、
    # softmax が 1 つのキーに張り付いて勾配が消える
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        check_mask(mask, scores.shape)
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    if mask is not None:
        # 全部隠れた行は softmax が 0/0 で NaN になるので 0 で上書きする
        weights = weights.masked_fill(~mask, 0.0)
    if dropout_p > 0.0:
        weights = F.dropout(weights, dropout_p)
    return weights @ v, weights


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """GQA: (batch, kv_heads, seq, d) のヘッドを n_rep 回ずつ複製する。

    クエリのヘッド h は、キーと値のヘッド h // n_rep を使う（隣り合う
    n_rep 個のクエリのヘッドが 1 つの群）。Hugging Face の Llama と同じ
    対応。x.repeat（群をまたいで巡回する対応）とは違う。
    """
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)


Backend = Literal["sdpa", "manual"]


def check_backend(backend: str) -> Backend:
    """注意の計算の backend の名前を確かめる（"sdpa" か "manual"）。"""
    if backend == "sdpa":
        return "sdpa"
    if backend == "manual":
        return "manual"
    raise ValueError(
        f'backend={backend!r} は知りません。"sdpa"（PyTorch の '
        'F.scaled_dot_product_attention、重みを返さない）か "manual"'
        "（本書の scaled_dot_product_attention、重みも返す）にして"
        "ください。"
    )


class MultiHeadAttention(nn.Module):
    """多頭注意（multi-head attention）。自己注意とクロス注意の両方に使う。

    d_model 次元を n_heads 個のヘッドに分け、それぞれが独立に注意を計算
    してから結合する。context を渡せばクロス注意（クエリは x から、
    キーと値は context から）、渡さなければ自己注意になる。

    causal=True なら因果マスクを自分で足す（デコーダの自己注意）。
    rotary を渡すと、クエリとキーを RoPE で回してから内積を取る。
    n_kv_heads（n_heads の約数）を渡すと GQA になる。キーと値の射影は
    n_kv_heads 個のヘッドの分だけで、KV キャッシュもその大きさで持つ。
    n_kv_heads=1 が MQA、n_kv_heads=n_heads（既定）が普通の多頭注意。

    backend は注意の計算に使う関数:
    "sdpa"（既定）は PyTorch の F.scaled_dot_product_attention。入力と
    デバイスに応じて速い手順を選ぶが、注意の重みを返さない。
    "manual" は上の自前の scaled_dot_product_attention。注意の重みも返す
    （重みを見たいとき、図にしたいとき）。属性 backend はあとから
    書き換えてよい。
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        causal: bool = False,
        backend: Backend = "sdpa",
        rotary: RotaryEmbedding | None = None,
        n_kv_heads: int | None = None,
    ) -> None:
        super().__init__()
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if n_kv_heads < 1 or n_heads % n_kv_heads != 0:
            raise ValueError(
                f"n_heads={n_heads} が n_kv_heads={n_kv_heads} で割り切れ"
                "ません。クエリのヘッドを同じ数ずつの群に分けて、群ごとに"
                "キーと値を共有するので、約数にしてください。"
            )
        if d_model % n_heads != 0:
            raise ValueError(
                f"d_model={d_model} が n_heads={n_heads} で割り切れません。"
                "各ヘッドが d_model / n_heads 次元を受け持つので、"
                "割り切れる組み合わせにしてください"
                "（例: d_model=512, n_heads=8）。"
            )
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads
        self.dropout = dropout
        self.causal = causal
        self.backend = check_backend(backend)
        head_dim = d_model // n_heads
        self.head_dim = head_dim
        if rotary is not None and rotary.cos.size(-1) != head_dim:
            raise ValueError(
                f"rotary の head_dim={rotary.cos.size(-1)} が、この層の"
                f" 1 ヘッドの次元 d_model / n_heads = {head_dim} と"
                "違います。"
                f"RotaryEmbedding({head_dim}, max_len) を渡してください。"
            )
        self.rotary = rotary
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        d_kv = n_kv_heads * head_dim
        self.k_proj = nn.Linear(d_model, d_kv, bias=bias)
        self.v_proj = nn.Linear(d_model, d_kv, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def split_heads(self, x: Tensor) -> Tensor:
        """(batch, seq, heads × d_k) → (batch, heads, seq, d_k)。

        ヘッドの数は最後の次元の大きさから決まる（クエリは n_heads、
        GQA のキーと値は n_kv_heads）。
        """
        batch, seq, _ = x.shape
        x = x.view(batch, seq, -1, self.head_dim)
        return x.transpose(1, 2)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        mask: Tensor | None = None,
        cache: KVCache | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """注意を計算して (出力 (batch, q_len, d_model), 重み) を返す。

        重みは (batch, heads, q_len, k_len)。backend="sdpa" のときは None。
        cache を渡すと、キーと値をそこに足してから注意を計算する
        （自己注意で 1 トークンずつ生成するとき用）。
        """
        source = x if context is None else context
        q = self.split_heads(self.q_proj(x))
        k = self.split_heads(self.k_proj(source))
        v = self.split_heads(self.v_proj(source))
        start = 0 if cache is None else cache.length
        if self.rotary is not None:
            q = self.rotary(q, start)
            k = self.rotary(k, start)
        if cache is not None:
            k, v = cache.append(k, v)  # GQA なら共有する前の小さい形で持つ
        n_rep = self.n_heads // self.n_kv_heads
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
        if mask is not None:
            check_mask(mask, torch.Size((*q.shape[:-1], k.size(-2))))
        if self.causal:
            mask = combine_masks(
                mask, causal_mask(q.size(-2), k.size(-2), x.device)
            )
        return self.attend(q, k, v, mask)

    def attend(
        self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        """ヘッドごとに注意を計算し、ヘッドを結合して W^O を掛ける。

        q: (batch, heads, q_len, d_k)、k と v: (batch, heads, k_len, d_k)。
        """
        dropout_p = self.dropout if self.training else 0.0
        weights: Tensor | None = None
        # あとから書き換えた属性も、ここで名前を確かめる
        if check_backend(self.backend) == "sdpa":
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout_p
            )
        else:
            out, weights = scaled_dot_product_attention(
                q, k, v, mask, dropout_p
            )
        # ヘッドを結合して (batch, q_len, d_model) に戻す
        batch, _, q_len, _ = q.shape
        out = out.transpose(1, 2).reshape(batch, q_len, -1)
        return self.out_proj(out), weights


class KVCache:
    """1 つの自己注意の層が、これまでの位置について計算したキーと値。

    生成では 1 トークンずつ進む。過去の位置のキーと値は変わらないので、
    取っておけば新しい 1 トークンの分だけ計算すればよい。
    """

    def __init__(self) -> None:
        self.k: Tensor | None = None
        self.v: Tensor | None = None

    @property
    def length(self) -> int:
        """取ってある位置の数（次のトークンの位置の番号でもある）。"""
        return 0 if self.k is None else self.k.size(-2)

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """新しい位置のキーと値を後ろに足し、過去の分と合わせて返す。"""
        if self.k is not None and self.v is not None:
            k = torch.cat([self.k, k], dim=-2)
            v = torch.cat([self.v, v], dim=-2)
        self.k, self.v = k, v
        return k, v
