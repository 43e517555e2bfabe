"""第11章: Post-LN と Pre-LN を同じ設定で学習させた損失の推移。

学習は本文のリスト（listings/ch11/02_pre_post_ln.py）をそのまま使う。
スレッドを 1 つにして、実行ごとに同じ結果になるようにする。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from _figlib import FigureWriter, load_listing, seed_everything

LR = 3e-3
STEPS = 120
DEPTHS = (2, 6)
WINDOW = 10  # 移動平均の幅（1 ステップの損失はばらつきが大きい）


def moving_average(values: list[float], window: int) -> np.ndarray:
    kernel = np.ones(window) / window
    return np.convolve(np.asarray(values), kernel, mode="valid")


def main() -> None:
    seed_everything(0)
    torch.set_num_threads(1)
    ln = load_listing("ch11/02_pre_post_ln.py")
    fig, axes = plt.subplots(1, 2, figsize=(7, 3), sharey=True)
    styles = {
        False: ("Post-LN（原論文）", "#c44e52"),
        True: ("Pre-LN", "#4c72b0"),
    }
    for ax, depth in zip(axes, DEPTHS, strict=True):
        for norm_first, (label, color) in styles.items():
            losses = ln.train_reverse(norm_first, depth, LR, STEPS)
            steps = np.arange(1, STEPS + 1)
            ax.plot(steps, losses, color=color, alpha=0.2, linewidth=0.8)
            smooth = moving_average(losses, WINDOW)
            ax.plot(steps[WINDOW - 1 :], smooth, color=color, label=label)
        ax.set_title(f"エンコーダとデコーダが各 {depth} 層", fontsize=10)
        ax.set_xlabel("更新の回数")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("学習データの損失（交差エントロピー）")
    axes[0].legend()
    fig.tight_layout()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
