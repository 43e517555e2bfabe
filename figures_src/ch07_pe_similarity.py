"""第7章: 位置エンコーディングどうしの内積は、位置の差だけで決まる。

左は 64 位置どうしの内積 PE[p]・PE[q] の行列、右はその 1 行
（位置 32 と各位置の内積）。表はパッケージの sinusoidal_encoding で作る。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from _figlib import FigureWriter

from easy_transformer.embedding import sinusoidal_encoding

POSITIONS = 64
D_MODEL = 64
ROW = 32


def main() -> None:
    pe = sinusoidal_encoding(POSITIONS, D_MODEL)
    dots = (pe @ pe.T).numpy()
    fig, (ax_map, ax_row) = plt.subplots(
        1,
        2,
        figsize=(8.4, 3.6),
        layout="constrained",
        gridspec_kw={"width_ratios": [1, 1.3]},
    )
    image = ax_map.imshow(dots, cmap="viridis", interpolation="nearest")
    ax_map.axhline(ROW, color="white", lw=0.8, ls="--")
    ax_map.set_xlabel("位置 q")
    ax_map.set_ylabel("位置 p")
    ax_map.set_title("PE[p]・PE[q]", fontsize=10)
    fig.colorbar(image, ax=ax_map, shrink=0.85)
    ax_row.plot(range(POSITIONS), dots[ROW], marker="o", markersize=2)
    ax_row.axvline(ROW, color="gray", lw=0.8, ls="--")
    ax_row.set_xlabel("位置 q")
    ax_row.set_ylabel("内積")
    ax_row.set_title(f"位置 {ROW} との内積（左の破線の行）", fontsize=10)
    ax_row.set_xlim(0, POSITIONS - 1)
    ax_row.grid(alpha=0.3)
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
