"""第12章: エンコーダ・デコーダの 3 種類の注意が、どの位置を見られるか。

ソースは長さ 5（最後の 1 つが <pad>）、ターゲットは長さ 4。
マスクは easy_transformer.attention の関数で作る（True が見てよい位置）。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from _figlib import FigureWriter
from matplotlib.colors import ListedColormap

from easy_transformer.attention import causal_mask, padding_mask

PAD_ID = 0


def main() -> None:
    src = torch.tensor([[5, 8, 3, 9, PAD_ID]])
    tgt_len = 4
    src_keep = padding_mask(src, PAD_ID)[0, 0]  # (1, src_len)
    panels = (
        (
            "(a) エンコーダの自己注意",
            src_keep.expand(5, 5),
            "ソース",
            "ソース",
        ),
        (
            "(b) デコーダの自己注意",
            causal_mask(tgt_len),
            "ターゲット",
            "ターゲット",
        ),
        (
            "(c) クロス注意",
            src_keep.expand(tgt_len, 5),
            "ソース",
            "ターゲット",
        ),
    )
    cmap = ListedColormap(["#eeeeee", "#4c72b0"])
    fig, axes = plt.subplots(
        1, 3, figsize=(7.2, 2.6), gridspec_kw={"width_ratios": [5, 4, 5]}
    )
    for ax, (title, mask, key_name, query_name) in zip(
        axes, panels, strict=True
    ):
        ax.imshow(mask.int().numpy(), cmap=cmap, vmin=0, vmax=1)
        rows, cols = mask.shape
        for q in range(rows):
            for k in range(cols):
                ax.text(
                    k,
                    q,
                    "○" if mask[q, k] else "×",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if mask[q, k] else "black",
                )
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(cols))
        ax.set_yticks(range(rows))
        ax.set_xlabel(f"キー（{key_name}の位置）", fontsize=8)
        ax.set_ylabel(f"クエリ（{query_name}の位置）", fontsize=8)
    fig.tight_layout()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
