"""第14章: デバッグの道具を試すための、わざと壊した部品。

SquareWithWrongGrad は、逆伝播の式を書き間違えた自作の演算。
NaiveLayerNorm は、分母に eps を足し忘れた層正規化。
どちらも forward はもっともらしい値を返すので、見ただけでは
気づきにくい。
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SquareWithWrongGrad(torch.autograd.Function):
    """y = x²。backward を書き間違えている（正しい導関数は 2x）。"""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx, x: Tensor
    ) -> Tensor:
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: Tensor
    ) -> Tensor:
        (x,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return grad * x  # 誤り: 2 * x を掛けるべき


class NaiveLayerNorm(nn.Module):
    """層正規化を式どおりに書き、分母の eps を忘れたもの。

    入力のベクトルの成分がすべて等しいと、分散が 0 になり 0 / 0 = NaN。
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return self.gain * (x - mean) / var.sqrt() + self.bias


def tagger(vocab_size: int = 10, d_model: int = 8) -> nn.Sequential:
    """トークンごとにロジットを出す小さなモデル。ID 0 は <pad>。

    nn.Embedding の padding_idx の行は 0 のベクトルに初期化され、
    学習でも更新されない。そこに NaiveLayerNorm が掛かる。
    """
    return nn.Sequential(
        nn.Embedding(vocab_size, d_model, padding_idx=0),
        NaiveLayerNorm(d_model),
        nn.Linear(d_model, vocab_size),
    )
