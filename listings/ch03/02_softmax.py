"""第3章: softmax と温度、エントロピー（NumPy）。"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def softmax(logits: Array, temperature: float = 1.0) -> Array:
    """最後の軸について softmax を取る。temperature で分布の鋭さを変える。

    exp の前に最大値を引いても結果は変わらない（分子と分母に同じ
    exp(-max) が掛かるだけ）が、exp(1000) のような桁あふれを防げる。
    """
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def entropy(p: Array) -> float:
    """エントロピー H(p) = -Σ p log p（自然対数、単位はナット）。

    p = 0 の項は、p log p → 0 の極限に合わせて 0 とする。
    """
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())
