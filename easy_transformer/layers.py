"""Transformer の層（第3部）。

本の章の順に、層正規化 `LayerNorm` と残差接続 `Residual`（第8章）、
位置ごとの全結合層 `FeedForward`（第10章）、それらと注意を積んだ
`EncoderLayer` と `DecoderLayer`（第11・12章）を並べる。Pre-LN と
Post-LN の違いは `Residual` の 1 か所にだけ書く。Llama 形式の部品
（第17章）の `RMSNorm` と `SwiGLU` は、それぞれ `LayerNorm` と
`FeedForward` のすぐ後に置き、名前（"rmsnorm"、"swiglu"）で選ぶ。
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from easy_transformer.attention import KVCache, MultiHeadAttention
from easy_transformer.embedding import RotaryEmbedding


class LayerNorm(nn.Module):
    """最後の次元を平均 0・分散 1 にそろえ、学習する倍率と足しを掛ける。

    分散は標本分散（n で割る）で、eps の既定値 1e-5 とあわせて
    nn.LayerNorm と同じ。
    """

    def __init__(
        self, d_model: int, eps: float = 1e-5, bias: bool = True
    ) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        centered = x - x.mean(dim=-1, keepdim=True)
        # 標本分散（n で割る）。x.var(dim=-1, correction=0) と同じ値。
        # centered を使い回すと、小さなテンソルでは速い
        var = (centered * centered).mean(dim=-1, keepdim=True)
        x = centered * torch.rsqrt(var + self.eps)
        x = x * self.weight
        return x if self.bias is None else x + self.bias


class RMSNorm(nn.Module):
    """平均を引かず、2 乗の平均の平方根（RMS）で割って倍率を掛ける。

    x / √(mean(x²) + eps) * weight。足し（bias）は持たない
    （Zhang & Sennrich, 2019）。Llama はこれを Pre-LN の位置で使う。
    """

    def __init__(self, d_model: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: Tensor) -> Tensor:
        # 半精度でも 2 乗の平均が溢れないよう float32 で計算する
        # （Hugging Face の Llama と同じ順序）
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def make_norm(kind: str, d_model: int, eps: float, bias: bool) -> nn.Module:
    """正規化の層を名前で作る（"layernorm" か "rmsnorm"）。"""
    if kind == "layernorm":
        return LayerNorm(d_model, eps, bias)
    if kind == "rmsnorm":
        return RMSNorm(d_model, eps)
    raise ValueError(
        f"正規化 {kind!r} は知りません。"
        '"layernorm" か "rmsnorm" を選んでください。'
    )


class Residual(nn.Module):
    """残差接続: 副層（注意や FeedForward）の出力を入力に足す。

    Pre-LN（norm_first=True）: x + dropout(副層(norm(x)))
    Post-LN（原論文）:         norm(x + dropout(副層(x)))
    Pre-LN は足し算の道に正規化が挟まらないので、深くしても学習が
    安定しやすい。GPT-2 以降の多くのモデルは Pre-LN を使う。
    """

    def __init__(
        self,
        d_model: int,
        dropout: float,
        norm_first: bool,
        eps: float = 1e-5,
        bias: bool = True,
        norm: str = "layernorm",
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.norm = make_norm(norm, d_model, eps, bias)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: Tensor, sublayer: Callable[[Tensor], Tensor]
    ) -> Tensor:
        if self.norm_first:
            x = x + self.dropout(sublayer(self.norm(x)))
        else:
            x = self.norm(x + self.dropout(sublayer(x)))
        return x


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    # GPT-2 が使う tanh による近似（元の実装が速さのために選んだ）
    "gelu_tanh": partial(F.gelu, approximate="tanh"),
}


class FeedForward(nn.Module):
    """位置ごとに同じ 2 層の全結合網: fc2(活性化(fc1(x)))。"""

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        activation: str = "relu",
        dropout: float = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"活性化関数 {activation!r} は知りません。"
                f"{', '.join(ACTIVATIONS)} のどれかを選んでください。"
            )
        self.activation = ACTIVATIONS[activation]
        self.fc1 = nn.Linear(d_model, d_ff, bias=bias)
        self.fc2 = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.activation(self.fc1(x))
        x = self.fc2(self.dropout(x))
        return x


class SwiGLU(nn.Module):
    """ゲート付きの FFN: fc2(SiLU(fc_gate(x)) ⊙ fc1(x))（Shazeer, 2020）。

    fc1 が Llama の up_proj、fc_gate が gate_proj、fc2 が down_proj。
    行列が 3 つあるので、FeedForward と同じパラメータ数にするには
    d_ff を 4 d_model の 2/3 にする。
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        dropout: float = 0.0,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.fc_gate = nn.Linear(d_model, d_ff, bias=bias)
        self.fc1 = nn.Linear(d_model, d_ff, bias=bias)
        self.fc2 = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        h = F.silu(self.fc_gate(x)) * self.fc1(x)
        out: Tensor = self.fc2(self.dropout(h))
        return out


def make_ffn(
    d_model: int, d_ff: int, activation: str, dropout: float, bias: bool
) -> nn.Module:
    """FFN を作る。activation="swiglu" ならゲート付きの SwiGLU。"""
    if activation == "swiglu":
        return SwiGLU(d_model, d_ff, dropout, bias)
    return FeedForward(d_model, d_ff, activation, dropout, bias)


class EncoderLayer(nn.Module):
    """エンコーダの 1 層: 自己注意 → FeedForward（どちらも残差接続）。"""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        eps: float = 1e-5,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout, bias)
        self.ffn = FeedForward(d_model, d_ff, activation, dropout, bias)
        args = (d_model, dropout, norm_first, eps, bias)
        self.self_attn_res = Residual(*args)
        self.ffn_res = Residual(*args)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x (batch, seq, d_model) → 同じ形。mask はパディングなど。"""
        x = self.self_attn_res(x, lambda h: self.self_attn(h, mask=mask)[0])
        x = self.ffn_res(x, self.ffn)
        return x


class DecoderLayer(nn.Module):
    """デコーダの 1 層: 因果的な自己注意 → クロス注意 → FeedForward。

    cross_attention=False にするとクロス注意を持たない。GPT のような
    デコーダだけのモデル（decoder-only）の 1 層はこれになる。
    Llama 形式（第17章）にするには norm="rmsnorm"、activation="swiglu"、
    bias=False、rotary（RoPE）、n_kv_heads（GQA）を渡す。
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        eps: float = 1e-5,
        bias: bool = True,
        cross_attention: bool = True,
        norm: str = "layernorm",
        n_kv_heads: int | None = None,
        rotary: RotaryEmbedding | None = None,
    ) -> None:
        super().__init__()
        args = (d_model, dropout, norm_first, eps, bias, norm)
        # 後ろのトークンを見ると、学習で「答え」を覗けてしまう
        self.self_attn = MultiHeadAttention(
            d_model,
            n_heads,
            dropout,
            bias,
            causal=True,
            rotary=rotary,
            n_kv_heads=n_kv_heads,
        )
        self.self_attn_res = Residual(*args)
        self.cross_attn: MultiHeadAttention | None = None
        self.cross_attn_res: Residual | None = None
        if cross_attention:
            self.cross_attn = MultiHeadAttention(
                d_model, n_heads, dropout, bias
            )
            self.cross_attn_res = Residual(*args)
        self.ffn = make_ffn(d_model, d_ff, activation, dropout, bias)
        self.ffn_res = Residual(*args)

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        cache: KVCache | None = None,
    ) -> Tensor:
        """x (batch, tgt_len, d_model) → 同じ形。

        memory はエンコーダの出力 (batch, src_len, d_model)。mask は
        自己注意に足すマスク（因果マスクは自己注意が自分で足す）、
        memory_mask はクロス注意のマスク（ソース側のパディング）。
        """
        x = self.self_attn_res(
            x, lambda h: self.self_attn(h, mask=mask, cache=cache)[0]
        )
        if self.cross_attn is not None and self.cross_attn_res is not None:
            if memory is None:
                raise ValueError(
                    "クロス注意を持つデコーダ層には memory（エンコーダの"
                    "出力）を渡してください。"
                )
            cross_attn = self.cross_attn
            x = self.cross_attn_res(
                x, lambda h: cross_attn(h, memory, memory_mask)[0]
            )
        x = self.ffn_res(x, self.ffn)
        return x
