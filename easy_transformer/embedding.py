"""埋め込みと位置の情報（第2部）。

トークン ID をベクトルに変える `TokenEmbedding` のあとに、位置の情報を
入れる 3 つの方法を並べる。原論文の正弦波の位置エンコーディング、GPT-2 の
学習する位置埋め込み、そして注意機構の中でクエリとキーを回す RoPE。
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def check_ids(ids: Tensor, vocab_size: int) -> None:
    """トークン ID が語彙の範囲 [0, vocab_size) にあるかを確かめる。

    nn.Embedding は範囲外の ID に分かりにくい IndexError を出すので、
    何が悪いかを先に日本語で伝える。
    """
    if ids.dtype not in (torch.int32, torch.int64):
        raise TypeError(
            f"トークン ID は整数のテンソル（torch.long）で渡してください。"
            f"いまは {ids.dtype} です。"
        )
    if ids.numel() == 0:
        return
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= vocab_size:
        raise ValueError(
            f"語彙にない ID があります（最小 {lo}、最大 {hi}）。"
            f"ID は 0 以上 vocab_size={vocab_size} 未満にしてください。"
            "トークナイザの"
            "語彙数とモデルの vocab_size が合っているか確かめてください。"
        )


def check_length(length: int, max_len: int) -> None:
    """系列の長さが、位置の表が用意した最大長を超えていないかを確かめる。"""
    if length > max_len:
        raise ValueError(
            f"系列長 {length} が最大長 {max_len}（GPT では block_size）を"
            f"超えています。入力を後ろの {max_len} トークン以下に"
            "切り詰めるか、"
            "最大長を大きくしてモデルを作り直してください。"
        )


class TokenEmbedding(nn.Module):
    """トークン ID から d_model 次元のベクトルを引く表（記号表に近い）。"""

    def __init__(
        self, vocab_size: int, d_model: int, scale: bool = True
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, d_model)
        # 原論文は埋め込みに √d_model を掛ける（理由は書かれていない）。
        # 初期値の標準偏差が 1/√d_model 程度なら成分がおよそ ±1 になり
        # 位置エンコーディングと釣り合うが、nn.Embedding の既定の初期値
        # N(0, 1) のままでは標準偏差が √d_model になる。GPT-2 は掛けない。
        self.scale = math.sqrt(d_model) if scale else 1.0

    def forward(self, ids: Tensor) -> Tensor:
        """(batch, seq) の ID → (batch, seq, d_model) のベクトル。"""
        check_ids(ids, self.vocab_size)
        vectors: Tensor = self.embed(ids)
        return vectors * self.scale


def sinusoidal_encoding(max_len: int, d_model: int) -> Tensor:
    """原論文の位置エンコーディングの表 (max_len, d_model) を作る。

    PE[pos, 2i] = sin(pos / 10000^(2i/d_model))
    PE[pos, 2i+1] = cos(pos / 10000^(2i/d_model))
    """
    if d_model % 2 != 0:
        raise ValueError(
            f"d_model={d_model} が奇数です。sin と cos を対で並べるので、"
            "偶数にしてください。"
        )
    # 位置が大きいと角度の丸め誤差が目立つので float64 で計算する
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)
    angle = pos / 10000 ** (two_i / d_model)
    pe = torch.empty(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()


class SinusoidalPositionalEncoding(nn.Module):
    """固定の正弦波を足して位置を伝える（学習するパラメータは無い）。"""

    pe: Tensor

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        # 式から作り直せるので state_dict には保存しない
        pe = sinusoidal_encoding(max_len, d_model)
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """x (batch, seq, d_model) に位置 start, start+1, ... を足す。"""
        seq = x.size(1)
        check_length(start + seq, self.pe.size(0))
        return x + self.pe[start : start + seq]


class LearnedPositionalEmbedding(nn.Module):
    """位置ごとのベクトルも学習で決める（GPT-2 の方式）。"""

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        self.max_len = max_len
        self.embed = nn.Embedding(max_len, d_model)

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """x (batch, seq, d_model) に位置 start, start+1, ... を足す。"""
        seq = x.size(1)
        check_length(start + seq, self.max_len)
        pos = torch.arange(start, start + seq, device=x.device)
        pe: Tensor = self.embed(pos)
        return x + pe


class RotaryEmbedding(nn.Module):
    """RoPE: クエリとキーを位置に比例した角度だけ回す。

    次元を前半と後半に分け、(x[j], x[j + d/2]) の 2 次元ずつを角度
    pos * base^(-2j/d) で回す（Hugging Face の Llama と同じ並べ方。
    論文の「隣り合う 2 次元を組にする」並べ方とは、次元の並べ替え
    （W_Q、W_K の出力の次元の置換）で互いに移れる。同じ q、k をそのまま
    渡すと内積は違うので、学習済みの重みは並べ替えてから読み込む）。
    位置 m のクエリと位置 n のキーの内積は、q、k と回転の差 m - n だけで
    決まり（絶対位置によらない）、相対位置が自然に現れる。
    """

    cos: Tensor
    sin: Tensor

    def __init__(
        self, head_dim: int, max_len: int, base: float = 10000.0
    ) -> None:
        super().__init__()
        if head_dim % 2 != 0:
            raise ValueError(
                f"head_dim={head_dim} が奇数です。2 次元ずつ回すので、"
                "偶数にしてください。"
            )
        # sinusoidal_encoding と同じく、角度は float64 で計算する
        j = torch.arange(0, head_dim, 2, dtype=torch.float64)
        pos = torch.arange(max_len, dtype=torch.float64)
        angle = pos[:, None] / base ** (j / head_dim)
        angle = torch.cat([angle, angle], dim=-1)  # 前半と後半で同じ角度
        self.register_buffer("cos", angle.cos().float(), persistent=False)
        self.register_buffer("sin", angle.sin().float(), persistent=False)

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """x (..., seq, head_dim) の各位置を start から数えた位置で回す。"""
        seq = x.size(-2)
        check_length(start + seq, self.cos.size(0))
        cos = self.cos[start : start + seq].to(x.dtype)
        sin = self.sin[start : start + seq].to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        # 2 次元の回転 (a, b) → (a cos - b sin, b cos + a sin) をまとめて
        return x * cos + torch.cat([-x2, x1], dim=-1) * sin
