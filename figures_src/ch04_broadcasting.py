"""第4章: ブロードキャストの規則を升目で描く。(3, 1) + (1, 4) → (3, 4)。"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from _figlib import FigureWriter, seed_everything
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

A = np.array([[0], [10], [20]])
B = np.array([[1, 2, 3, 4]])


def grid(
    ax: Axes, values: np.ndarray, x0: float, y0: float, ghost: np.ndarray
) -> None:
    """values を升目に描く。ghost の升目は引き伸ばした写しで、薄く描く。"""
    rows, cols = values.shape
    for r in range(rows):
        for c in range(cols):
            faded = bool(ghost[r, c])
            ax.add_patch(
                Rectangle(
                    (x0 + c, y0 - r - 1),
                    1,
                    1,
                    facecolor="#f2f2f2" if faded else "#d9cfe8",
                    edgecolor="#6a4c93",
                    ls="--" if faded else "-",
                )
            )
            ax.text(
                x0 + c + 0.5,
                y0 - r - 0.5,
                str(values[r, c]),
                ha="center",
                va="center",
                fontsize=10,
                color="#999999" if faded else "black",
            )


def main() -> None:
    seed_everything(0)
    fig, ax = plt.subplots(figsize=(7.5, 2.4))
    a_full, b_full = np.broadcast_arrays(A, B)
    ghost_a = np.ones_like(a_full, dtype=bool)
    ghost_a[:, 0] = False
    ghost_b = np.ones_like(b_full, dtype=bool)
    ghost_b[0, :] = False
    grid(ax, a_full, 0, 3, ghost_a)
    ax.text(4.6, 1.5, "+", fontsize=16, ha="center", va="center")
    grid(ax, b_full, 5.2, 3, ghost_b)
    ax.text(9.8, 1.5, "=", fontsize=16, ha="center", va="center")
    grid(ax, A + B, 10.4, 3, np.zeros((3, 4), dtype=bool))
    ax.text(2, 3.35, "a: (3, 1)", ha="center", fontsize=9)
    ax.text(7.2, 3.35, "b: (1, 4)", ha="center", fontsize=9)
    ax.text(12.4, 3.35, "a + b: (3, 4)", ha="center", fontsize=9)
    ax.set_xlim(-0.2, 14.6)
    ax.set_ylim(-0.3, 3.8)
    ax.set_aspect("equal")
    ax.axis("off")
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
