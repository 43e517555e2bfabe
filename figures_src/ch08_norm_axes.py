"""第8章: 層正規化とバッチ正規化が、どの要素をまとめて正規化するか。

(batch, seq, d_model) のテンソルを、行をトークン（batch × seq）、
列を特徴（d_model）にした表として描き、1 回の正規化で平均と分散を
共有する要素を塗る。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from _figlib import FigureWriter
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

BATCH, SEQ, D_MODEL = 3, 4, 8


def draw(ax: Axes, title: str, row: int | None, col: int | None) -> None:
    """表のマス目を描き、row 行目（または col 列目）を塗る。"""
    tokens = BATCH * SEQ
    ax.imshow(np.zeros((tokens, D_MODEL)), cmap="Greys", vmin=0, vmax=1)
    if row is not None:
        ax.add_patch(
            Rectangle((-0.5, row - 0.5), D_MODEL, 1, color="#ff7f0e")
        )
    if col is not None:
        ax.add_patch(
            Rectangle((col - 0.5, -0.5), 1, tokens, color="#1f77b4")
        )
    # マス目と、系列（バッチの 1 要素）の区切りの線
    for y in range(tokens + 1):
        lw = 1.6 if y % SEQ == 0 else 0.4
        ax.axhline(y - 0.5, color="black", lw=lw)
    for x in range(D_MODEL + 1):
        ax.axvline(x - 0.5, color="black", lw=0.4)
    ax.set_xticks([])
    ax.set_yticks(
        [b * SEQ + (SEQ - 1) / 2 for b in range(BATCH)],
        labels=[f"系列 {b}" for b in range(BATCH)],
    )
    ax.tick_params(length=0)
    ax.set_xlabel("特徴（d_model）")
    ax.set_title(title, fontsize=10)


def main() -> None:
    fig, (ax_ln, ax_bn) = plt.subplots(
        1, 2, figsize=(6.4, 3.6), layout="constrained"
    )
    draw(ax_ln, "層正規化: 1 トークンの全特徴", row=5, col=None)
    draw(ax_bn, "バッチ正規化: 1 特徴の全トークン", row=None, col=2)
    ax_ln.set_ylabel("トークン（batch × seq）")
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
