"""第3章: 行列を「変換」として見る。回転・拡大縮小・射影。

行列は本文のリスト（listings/ch03/01_vectors.py）の関数で作る。
行ベクトルの流儀（y = x W）で、元の図形（灰色）と変換後（色）を重ねる。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from _figlib import FigureWriter, load_listing, seed_everything

# 向きが分かるように、左右非対称な「旗」の形を使う
FLAG = np.array(
    [[0, 0], [0, 1], [0.6, 0.8], [0, 0.6], [0, 0], [0.4, 0], [0.4, 0.2]]
)
ARROWS = {"1": np.array([1.0, 0.0]), "2": np.array([0.0, 1.0])}


def main() -> None:
    seed_everything(0)
    v = load_listing("ch03/01_vectors.py")
    maps = [
        ("回転（30°）", v.rotation(np.pi / 6)),
        ("拡大縮小（x を 2 倍、y を 0.5 倍）", v.scaling(2.0, 0.5)),
        ("射影（直線 y = x の上へ）", v.projection(np.array([1.0, 1.0]))),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(8, 3))
    for ax, (title, w) in zip(axes, maps, strict=True):
        ax.plot(*FLAG.T, color="#999999", ls="--", lw=1)
        ax.plot(*(FLAG @ w).T, color="#6a4c93", lw=2)
        for name, e in ARROWS.items():
            ax.annotate(
                "",
                xy=e,
                xytext=(0, 0),
                arrowprops={"arrowstyle": "->", "color": "#999999"},
            )
            ax.annotate(
                "",
                xy=e @ w,
                xytext=(0, 0),
                arrowprops={
                    "arrowstyle": "->",
                    "color": "#d1495b",
                    "lw": 1.5,
                },
            )
            label = f"$\\mathbf{{e}}_{name} W$"
            if "射影" in title:
                # 2 つの基底が同じ点に移るので、1 つの名前にまとめる
                if name == "2":
                    continue
                label = "$\\mathbf{e}_1 W = \\mathbf{e}_2 W$"
            ax.text(*(e @ w * 1.08), label, fontsize=8, color="#d1495b")
        if "射影" in title:
            t = np.linspace(-0.3, 1.3, 2)
            ax.plot(t, t, color="#00798c", lw=0.8, alpha=0.6)
        ax.set_title(title, fontsize=9)
        ax.set_xlim(-0.7, 2.3)
        ax.set_ylim(-0.7, 1.5)
        ax.set_aspect("equal")
        ax.axhline(0, color="black", lw=0.5)
        ax.axvline(0, color="black", lw=0.5)
        ax.tick_params(labelsize=7)
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
