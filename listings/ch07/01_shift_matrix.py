"""第7章: 正弦波の位置エンコーディングで、位置のずれを回転で表す。

PE[pos + k] = PE[pos] @ M(k) となる行列 M(k) を作る。M(k) は k だけで
決まり、pos によらない。

>>> m = shift_matrix(3, 4)
>>> torch.allclose(m @ m.T, torch.eye(4), atol=1e-6)  # 回転は直交行列
True
"""

import math

import torch
from torch import Tensor


def frequencies(d_model: int) -> Tensor:
    """位置エンコーディングの角周波数 ω_i = 10000^(-2i / d_model)。"""
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)
    return 10000 ** (-two_i / d_model)


def shift_matrix(k: int, d_model: int) -> Tensor:
    """位置を k だけずらす (d_model, d_model) の行列。

    PE の次元 (2i, 2i+1) は同じ角周波数 ω_i の (sin, cos) の組なので、
    その 2 次元を角度 k ω_i だけ回す 2 行 2 列の回転を対角に並べる。
    """
    m = torch.zeros(d_model, d_model, dtype=torch.float64)
    for i, w in enumerate(frequencies(d_model).tolist()):
        c, s = math.cos(k * w), math.sin(k * w)
        # 行ベクトル [sin a, cos a] に右から掛けると
        # [sin(a + kω), cos(a + kω)] になる（加法定理）
        m[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = torch.tensor(
            [[c, -s], [s, c]], dtype=torch.float64
        )
    return m.float()
