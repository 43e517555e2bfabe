"""第3章: 内積とコサイン類似度、行列による変換（NumPy）。

本書はベクトルを行ベクトルとして扱い、線形変換を y = x W と書く。
NumPy でも PyTorch でも、形 (n, d) の配列の各行を 1 つのベクトルとみて
右から行列を掛ければ、n 個のベクトルをまとめて変換できる。
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def cosine_similarity(a: Array, b: Array) -> float:
    """2 つのベクトルのなす角の余弦。1 なら同じ向き、0 なら直交。"""
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def rotation(theta: float) -> Array:
    """行ベクトルを角度 theta（ラジアン）だけ反時計回りに回す行列。

    列ベクトルの流儀（y = R x）の回転行列を転置したものになる。
    """
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, s], [-s, c]])


def scaling(sx: float, sy: float) -> Array:
    """x 方向に sx 倍、y 方向に sy 倍する行列。"""
    return np.array([[sx, 0.0], [0.0, sy]])


def projection(direction: Array) -> Array:
    """direction の方向の直線へ、ベクトルを正射影する行列。

    単位ベクトル u について P = uᵀ u（外積）。x P は x の u 方向の成分
    (x · u) u になる。P を 2 回掛けても結果は変わらない（P P = P）。
    """
    u = direction / np.linalg.norm(direction)
    return np.outer(u, u)
