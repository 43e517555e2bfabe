"""第20章: 右パディングと左パディングで、「最後の位置」がどこになるか。

長さ 6・2・4 の 3 本の列を 1 つのバッチにそろえ、各マスにトークン
（実トークンは t、パディングは pad）と位置の番号を書く。
左パディングの位置の番号は、パッケージの position_ids で計算する。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from _figlib import FigureWriter
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from easy_transformer.generation import left_pad, position_ids

LENGTHS = [6, 2, 4]
WIDTH = max(LENGTHS)


def draw(ax: Axes, title: str, left: bool) -> None:
    prompts = [list(range(1, n + 1)) for n in LENGTHS]
    if left:
        _, mask = left_pad(prompts, pad_id=0)
        pos = position_ids(mask)
    else:
        mask = torch.tensor(
            [[j < n for j in range(WIDTH)] for n in LENGTHS]
        )
        pos = torch.arange(WIDTH).expand(len(LENGTHS), WIDTH)
    for i, n in enumerate(LENGTHS):
        last = WIDTH - 1 if left else n - 1
        for j in range(WIDTH):
            real = bool(mask[i, j])
            y = len(LENGTHS) - 1 - i
            ax.add_patch(
                Rectangle(
                    (j, y),
                    0.94,
                    0.9,
                    facecolor="#DDE6F5" if real else "#F2F2F2",
                    edgecolor="#C44E52" if j == last else "#888888",
                    linewidth=2.5 if j == last else 0.8,
                    linestyle="-" if real else ":",
                )
            )
            label = f"t{int(pos[i, j]) + 1}" if real else "pad"
            ax.text(j + 0.47, y + 0.55, label, ha="center", fontsize=9)
            if real:
                ax.text(
                    j + 0.47,
                    y + 0.18,
                    f"位置 {int(pos[i, j])}",
                    ha="center",
                    fontsize=7,
                    color="#555555",
                )
    ax.set_xlim(-0.1, WIDTH + 0.1)
    ax.set_ylim(-0.1, len(LENGTHS))
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10)


def main() -> None:
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 2.6))
    draw(
        axes[0], "右パディング：最後の実トークンの位置が行ごとに違う", False
    )
    draw(axes[1], "左パディング：最後の位置が右端にそろう", True)
    fig.text(
        0.5,
        0.02,
        "赤枠＝次のトークンを予測する位置。「位置」は位置埋め込みに渡す番号",
        ha="center",
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
