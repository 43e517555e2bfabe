"""第8章: どの軸で平均と分散を取るかだけが違う、2 つの正規化。

>>> x = torch.tensor([[1.0, 3.0], [5.0, 11.0]])
>>> normalize(x, dims=(-1,))  # 行ごと（層正規化の向き）
tensor([[-1.0000,  1.0000],
        [-1.0000,  1.0000]])
>>> normalize(x, dims=(0,))  # 列ごと（バッチ正規化の向き）
tensor([[-1.0000, -1.0000],
        [ 1.0000,  1.0000]])
"""

import torch
from torch import Tensor


def normalize(
    x: Tensor, dims: tuple[int, ...], eps: float = 1e-5
) -> Tensor:
    """dims の軸について平均 0、分散 1 にそろえる（学習する重みは無い）。

    分散は標本分散（要素数 n で割る）で、nn.LayerNorm・nn.BatchNorm1d の
    正規化と同じ。
    """
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps)
