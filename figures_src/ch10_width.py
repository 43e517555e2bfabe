"""第10章: FFN の中間層の幅 d_ff と、覚えられた対応の割合。

学習は本文のリスト（listings/ch10/01_memorize.py）をそのまま使う。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from _figlib import FigureWriter, load_listing, seed_everything

D_FFS = (8, 16, 32, 64, 128, 256, 512)
D_MODEL = 16
N = 2048


def main() -> None:
    seed_everything(0)
    torch.set_num_threads(1)
    mem = load_listing("ch10/01_memorize.py")
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for activation, label, color, marker in (
        ("relu", "ReLU あり", "#4c72b0", "o"),
        (None, "活性化なし（線形）", "#c44e52", "s"),
    ):
        acc = [mem.memorize(d, activation, N, D_MODEL) for d in D_FFS]
        ax.plot(D_FFS, acc, marker=marker, color=color, label=label)
    ax.axhline(1 / D_MODEL, color="gray", linestyle="--", linewidth=0.8)
    ax.text(8, 1 / D_MODEL - 0.05, f"当て推量（1/{D_MODEL}）", fontsize=8)
    ax.axvline(4 * D_MODEL, color="gray", linestyle=":", linewidth=0.8)
    ax.text(4 * D_MODEL * 1.08, 0.9, r"$d_{ff} = 4 d_{model}$", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(r"中間層の幅 $d_{ff}$")
    ax.set_ylabel("学習データの正解率")
    ax.set_title(
        f"{N} 個のキーと {D_MODEL} クラスの対応を覚えさせる"
        f"（$d_{{model}}$ = {D_MODEL}）",
        fontsize=10,
    )
    ax.legend(loc="center right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
