"""第3章: 2 層のネットワークの逆伝播を NumPy で手で書く。

ネットワークは 線形 → ReLU → 線形 → softmax、損失は交差エントロピーの
バッチ平均。順伝播で途中の値を取っておき、逆伝播で連鎖律を出力側から
入力側へ 1 段ずつ当てていく。
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
Params = dict[str, Array]
Cache = dict[str, Array]


def init_params(d_in: int, d_hidden: int, d_out: int, seed: int) -> Params:
    rng = np.random.default_rng(seed)
    return {
        "W1": rng.normal(0, d_in**-0.5, (d_in, d_hidden)),
        "b1": np.zeros(d_hidden),
        "W2": rng.normal(0, d_hidden**-0.5, (d_hidden, d_out)),
        "b2": np.zeros(d_out),
    }


def forward(p: Params, x: Array, y: Array) -> tuple[float, Cache]:
    """損失と、逆伝播に使う途中の値を返す。y は正解のクラスの番号。"""
    z1 = x @ p["W1"] + p["b1"]  # (batch, hidden)
    h = np.maximum(z1, 0.0)  # ReLU
    z2 = h @ p["W2"] + p["b2"]  # (batch, out) ロジット
    z2 = z2 - z2.max(axis=1, keepdims=True)  # softmax の桁あふれ対策
    prob = np.exp(z2) / np.exp(z2).sum(axis=1, keepdims=True)
    n = len(y)
    loss = -np.log(prob[np.arange(n), y]).mean()
    return float(loss), {"x": x, "z1": z1, "h": h, "prob": prob, "y": y}


def backward(p: Params, cache: Cache) -> Params:
    """損失を各パラメータで微分した値（勾配）を返す。"""
    x, z1, h, prob, y = (cache[k] for k in ("x", "z1", "h", "prob", "y"))
    n = len(y)
    # softmax と交差エントロピーを合わせた微分: (確率 - 正解の one-hot) / n
    d_z2 = prob.copy()
    d_z2[np.arange(n), y] -= 1.0
    d_z2 /= n
    # 線形層 Z = H W + b: dL/dW = H^T G、dL/db = G の列の和、dL/dH = G W^T
    grads = {"W2": h.T @ d_z2, "b2": d_z2.sum(axis=0)}
    d_h = d_z2 @ p["W2"].T  # z2 = h W2 + b2 を h で微分
    d_z1 = d_h * (z1 > 0)  # ReLU は正の所だけ勾配を通す
    grads["W1"] = x.T @ d_z1
    grads["b1"] = d_z1.sum(axis=0)
    return grads
