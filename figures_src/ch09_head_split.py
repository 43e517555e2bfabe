"""第9章: view と transpose でヘッドに分けるときの、要素の並び。

seq=3、d_model=8、ヘッド 2 つ（d_k=4）の小さなテンソルの各要素に、
メモリ上の番号（0〜23）を書いて、3 つの形で並べる。
並べ替えの計算は PyTorch に任せ、図は結果の番号を描くだけにする。
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import torch
from _figlib import FigureWriter
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

SEQ, D_MODEL, HEADS = 3, 8, 2
D_K = D_MODEL // HEADS
COLORS = ("#a6cee3", "#fdbf6f")  # ヘッド 0 と 1
LABEL: dict[str, Any] = {"ha": "center", "va": "bottom", "fontsize": 9}


def draw_grid(
    ax: Axes, values: torch.Tensor, x0: float, y0: float, head: int | None
) -> None:
    """2 次元の番号の表を、左上を (x0, y0) にして描く。

    head が None なら、列の位置からヘッドを決めて色を塗る。
    """
    rows, cols = values.shape
    for r in range(rows):
        for c in range(cols):
            h = c // D_K if head is None else head
            ax.add_patch(
                Rectangle(
                    (x0 + c, y0 - r - 1),
                    1,
                    1,
                    facecolor=COLORS[h],
                    edgecolor="black",
                    linewidth=0.6,
                )
            )
            ax.text(
                x0 + c + 0.5,
                y0 - r - 0.5,
                str(int(values[r, c])),
                ha="center",
                va="center",
                fontsize=8,
            )


def main() -> None:
    x = torch.arange(SEQ * D_MODEL).view(SEQ, D_MODEL)
    viewed = x.view(SEQ, HEADS, D_K)
    moved = viewed.transpose(0, 1)  # (heads, seq, d_k)
    fig, ax = plt.subplots(figsize=(7.2, 3.0))
    # (1) 元の形 (seq, d_model)
    draw_grid(ax, x, 0, 0, None)
    ax.text(4, 0.4, "元の形\n(seq, d_model) = (3, 8)", **LABEL)
    # (2) view: (seq, heads, d_k)。行の中を 2 つに区切るだけ
    for s in range(SEQ):
        for h in range(HEADS):
            draw_grid(ax, viewed[s, h][None], 10 + h * 4.4, -s * 1.3, h)
    ax.text(14.2, 0.4, "view\n(seq, heads, d_k) = (3, 2, 4)", **LABEL)
    # (3) transpose: (heads, seq, d_k)。ヘッドごとの (seq, d_k) の表
    for h in range(HEADS):
        draw_grid(ax, moved[h], 22, -h * (SEQ + 0.6), h)
        ax.text(
            26.4,
            -h * (SEQ + 0.6) - 1.5,
            f"ヘッド {h}",
            va="center",
            fontsize=8,
        )
    ax.text(24, 0.4, "transpose\n(heads, seq, d_k) = (2, 3, 4)", **LABEL)
    for x_from, x_to in ((8.3, 9.7), (18.9, 21.6)):
        ax.annotate(
            "",
            xy=(x_to, -1.5),
            xytext=(x_from, -1.5),
            arrowprops={"arrowstyle": "->"},
        )
    ax.set_xlim(-0.3, 29)
    ax.set_ylim(-2 * SEQ - 1, 2.2)
    ax.set_aspect("equal")
    ax.axis("off")
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
