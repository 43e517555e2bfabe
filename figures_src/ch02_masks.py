"""第2章: 注意のマスク 3 種（マスクなし・因果マスク・窓付きの因果マスク）。

窓付きのマスクは本文のリスト（listings/ch02/04_scope_and_window.py）を使う。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from _figlib import FigureWriter, load_listing, seed_everything
from matplotlib.colors import ListedColormap

from easy_transformer.attention import causal_mask

SEQ_LEN = 8
WINDOW = 3


def main() -> None:
    seed_everything(0)
    scope = load_listing("ch02/04_scope_and_window.py")
    masks = [
        ("マスクなし（エンコーダ）", torch.ones(SEQ_LEN, SEQ_LEN)),
        ("因果マスク", causal_mask(SEQ_LEN)),
        (f"窓付き（直前 {WINDOW} 個）", scope.window_mask(SEQ_LEN, WINDOW)),
    ]
    cmap = ListedColormap(["#f2f2f2", "#6a4c93"])
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.9))
    for ax, (title, mask) in zip(axes, masks, strict=True):
        ax.imshow(mask.int().numpy(), cmap=cmap, vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(SEQ_LEN), [str(i) for i in range(SEQ_LEN)])
        ax.set_yticks(range(SEQ_LEN), [str(i) for i in range(SEQ_LEN)])
        ax.tick_params(labelsize=7)
        ax.set_xlabel("キーの位置（見られる側）", fontsize=8)
        # 升目の境界線
        ax.set_xticks([i - 0.5 for i in range(SEQ_LEN + 1)], minor=True)
        ax.set_yticks([i - 0.5 for i in range(SEQ_LEN + 1)], minor=True)
        ax.grid(which="minor", color="white", linewidth=1)
        ax.tick_params(which="minor", length=0)
    axes[0].set_ylabel("クエリの位置（見る側）", fontsize=8)
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
