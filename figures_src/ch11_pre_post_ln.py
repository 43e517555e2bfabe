"""第11章: Post-LN と Pre-LN を同じ設定で学習させた損失と、層ごとの勾配。

学習は本文のリスト（listings/ch11/01_pre_post_ln.py）をそのまま使う。
スレッドを 1 つにして、実行ごとに同じ結果になるようにする。
1 回の学習から 2 つの図（-loss と -grads）を作る。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from _figlib import FigureWriter, load_listing, seed_everything

LR = 3e-3
STEPS = 100
DEPTHS = (2, 6)
WINDOW = 10  # 移動平均の幅（1 ステップの損失はばらつきが大きい）
GRAD_STEPS = (0, 30)  # 勾配を描く更新の番号（0 は初期値での勾配）
STYLES = {
    False: ("Post-LN（原論文）", "#c44e52", "o"),
    True: ("Pre-LN", "#4c72b0", "s"),
}


def moving_average(values: list[float], window: int) -> np.ndarray:
    kernel = np.ones(window) / window
    return np.convolve(np.asarray(values), kernel, mode="valid")


def main() -> None:
    seed_everything(0)

    ln = load_listing("ch11/01_pre_post_ln.py")
    runs = {
        (depth, norm_first): ln.train_reverse(norm_first, depth, LR, STEPS)
        for depth in DEPTHS
        for norm_first in STYLES
    }
    writer = FigureWriter(__file__)

    # 損失の推移（深さごとに 1 枚）
    fig, axes = plt.subplots(1, 2, figsize=(7, 3), sharey=True)
    steps = np.arange(1, STEPS + 1)
    for ax, depth in zip(axes, DEPTHS, strict=True):
        for norm_first, (label, color, _) in STYLES.items():
            losses = runs[depth, norm_first].losses
            ax.plot(steps, losses, color=color, alpha=0.2, linewidth=0.8)
            smooth = moving_average(losses, WINDOW)
            ax.plot(steps[WINDOW - 1 :], smooth, color=color, label=label)
        ax.set_title(f"エンコーダとデコーダが各 {depth} 層", fontsize=10)
        ax.set_xlabel("更新の回数")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("学習データの損失")
    axes[0].legend()
    fig.tight_layout()
    writer.save(fig, "loss")

    # 6 層のモデルの、層ごとの勾配のノルム
    depth = DEPTHS[-1]
    names = [f"E{i}" for i in range(1, depth + 1)]
    names += [f"D{i}" for i in range(1, depth + 1)]
    fig, axes = plt.subplots(1, 2, figsize=(7, 3), sharey=True)
    for ax, step in zip(axes, GRAD_STEPS, strict=True):
        for norm_first, (label, color, marker) in STYLES.items():
            norms = runs[depth, norm_first].grad_norms[step]
            ax.plot(names, norms, marker=marker, color=color, label=label)
        ax.axvline(depth - 0.5, color="gray", linewidth=0.8)
        ax.set_yscale("log")
        title = "初期値" if step == 0 else f"{step} 回更新した後"
        ax.set_title(f"{title}での勾配", fontsize=10)
        ax.set_xlabel("層（E: エンコーダ、D: デコーダ）")
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("層のパラメータの勾配のノルム")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    writer.save(fig, "grads")


if __name__ == "__main__":
    main()
