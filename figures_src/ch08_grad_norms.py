"""第8章: 30 層のネットワークの層ごとの勾配ノルム（残差接続の有無）。

測定は本文のリスト（listings/ch08/01_deep_mlp.py）をそのまま使う。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from _figlib import FigureWriter, load_listing

DEPTH = 30


def main() -> None:
    dm = load_listing("ch08/01_deep_mlp.py")
    fig, ax = plt.subplots(figsize=(6, 3.6))
    cases = ((False, "残差接続なし", "o"), (True, "残差接続あり", "s"))
    for residual, label, marker in cases:
        norms = dm.layer_grad_norms(DEPTH, residual)
        ax.plot(range(DEPTH), norms, marker=marker, ms=3, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("層の番号（0 が入力に最も近い）")
    ax.set_ylabel("その層の重みの勾配ノルム")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
