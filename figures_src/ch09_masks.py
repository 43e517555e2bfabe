"""第9章: 因果マスク、パディングマスク、その論理積。

マスクは easy_transformer.attention の関数で作る（True が「注意して
よい」位置）。パディングマスクは、長さ 5 のうち後ろ 2 つが <pad> の列。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from _figlib import FigureWriter
from matplotlib.colors import ListedColormap

from easy_transformer.attention import (
    causal_mask,
    combine_masks,
    padding_mask,
)

SEQ = 5
PAD_ID = 0


def main() -> None:
    ids = torch.tensor([[7, 3, 9, PAD_ID, PAD_ID]])
    causal = causal_mask(SEQ)
    # (batch, 1, 1, seq) を (q_len, k_len) に放送して描く
    pad = padding_mask(ids, PAD_ID).expand(1, 1, SEQ, SEQ)[0, 0]
    both = combine_masks(causal, pad)
    assert both is not None
    panels = (
        ("(a) 因果マスク", causal),
        ("(b) パディングマスク", pad),
        ("(c) 両方の論理積", both),
    )
    cmap = ListedColormap(["#eeeeee", "#4c72b0"])
    fig, axes = plt.subplots(1, 3, figsize=(7, 2.7))
    for ax, (title, mask) in zip(axes, panels, strict=True):
        ax.imshow(mask.int().numpy(), cmap=cmap, vmin=0, vmax=1)
        for q in range(SEQ):
            for k in range(SEQ):
                ax.text(
                    k,
                    q,
                    "○" if mask[q, k] else "×",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if mask[q, k] else "black",
                )
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(SEQ))
        ax.set_yticks(range(SEQ))
        ax.set_xlabel("キーの位置")
    axes[0].set_ylabel("クエリの位置")
    fig.tight_layout()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
