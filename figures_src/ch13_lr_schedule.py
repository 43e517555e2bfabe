"""第13章: 学習率の予定（線形のウォームアップと余弦の減衰）。

本文のリスト（listings/ch13/06_train.py）の lr_at をそのまま描く。
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
from _figlib import ROOT, FigureWriter, load_listing, seed_everything

# 第13章のリストは互いを listings.ch13.… として import するので、
# リポジトリのルートを import の探索先に入れておく
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STEPS = 400
PEAK = 3e-3
WARMUP = 50


def main() -> None:
    seed_everything(0)
    tr = load_listing("ch13/06_train.py")
    steps = list(range(STEPS))
    lrs = [tr.lr_at(s, STEPS, PEAK, WARMUP) for s in steps]
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.plot(steps, lrs, color="#4c72b0")
    ax.axvline(WARMUP, color="gray", linestyle="--", linewidth=0.8)
    ax.annotate(
        "ウォームアップの終わり",
        xy=(WARMUP, PEAK * 0.3),
        xytext=(WARMUP + 12, PEAK * 0.3),
        fontsize=9,
        va="center",
        arrowprops={"arrowstyle": "->", "color": "gray"},
    )
    ax.set_xlabel("更新の回数")
    ax.set_ylabel("学習率")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
