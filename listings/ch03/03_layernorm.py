"""第3章: 平均と分散で層正規化を書く（NumPy）。"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def layer_norm(
    x: Array,
    weight: Array,
    bias: Array,
    eps: float = 1e-5,
    ddof: int = 0,
) -> Array:
    """最後の軸を平均 0・分散 1 にそろえ、weight 倍して bias を足す。

    ddof=0 なら標本分散（n で割る）、ddof=1 なら不偏分散（n - 1 で割る）。
    nn.LayerNorm と同じになるのは ddof=0 で、eps も 1e-5 のとき。
    """
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True, ddof=ddof)
    return (x - mean) / np.sqrt(var + eps) * weight + bias
