"""第7章: RoPE の 2 つの組み方（隣り合う 2 次元と、前半と後半）。

論文（Su et al.）は (x[2j], x[2j+1]) を組にして回す。パッケージの
RotaryEmbedding は (x[j], x[j + d/2]) を組にして回す。どちらも同じ角度の
表を使い、次元の並べ替え（置換）だけが違う。

>>> x = torch.arange(8.0)[None]    # 位置 0 の 1 トークン
>>> torch.equal(rope_interleaved(x), x), torch.equal(rope_half(x), x)
(True, True)
>>> interleaved_to_half(8)
[0, 2, 4, 6, 1, 3, 5, 7]
"""

import torch
from torch import Tensor


def rope_angles(seq: int, head_dim: int, base: float = 10000.0) -> Tensor:
    """角度の表 (seq, head_dim/2)。pos 行 j 列が pos * ω_j。

    ω_j = base^(-2j / head_dim) は正弦波の位置エンコーディングと同じ。
    """
    j = torch.arange(0, head_dim, 2, dtype=torch.float64)
    pos = torch.arange(seq, dtype=torch.float64)
    return pos[:, None] * base ** (-j / head_dim)


def rope_interleaved(x: Tensor) -> Tensor:
    """論文の並べ方: 隣り合う (x[2j], x[2j+1]) を角度 pos * ω_j で回す。"""
    angle = rope_angles(x.size(-2), x.size(-1))
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    a, b = x[..., 0::2], x[..., 1::2]  # 各組の 1 つ目と 2 つ目
    out = torch.empty_like(x)
    # 行ベクトル [a, b] に回転の行列を右から掛ける
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


def rope_half(x: Tensor) -> Tensor:
    """パッケージの並べ方: (x[j], x[j + d/2]) を角度 pos * ω_j で回す。"""
    angle = rope_angles(x.size(-2), x.size(-1))
    angle = torch.cat([angle, angle], dim=-1)  # 前半と後半に同じ角度を複製
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)  # 各組の 1 つ目（前半）と 2 つ目（後半）
    # 前半: x1 cos - x2 sin、後半: x2 cos + x1 sin
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def interleaved_to_half(head_dim: int) -> list[int]:
    """隣り合う組の並びを、前半と後半の組の並びに移す置換。

    x[..., perm] とすると、偶数番目の次元が前半に、奇数番目の次元が
    後半に集まり、組 (2j, 2j+1) が組 (j, j + d/2) に移る。
    """
    return [*range(0, head_dim, 2), *range(1, head_dim, 2)]
