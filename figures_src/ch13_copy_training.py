"""第13章: コピー課題の学習曲線（損失と、検証データの完全一致率）。

学習は本文のリスト（listings/ch13/06_train.py）の train をそのまま、
本文と同じ設定で使う。スレッドを 1 つにして、実行ごとに同じ結果にする。
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np
import torch
from _figlib import ROOT, FigureWriter, load_listing, seed_everything

# 第13章のリストは互いを listings.ch13.… として import するので、
# リポジトリのルートを import の探索先に入れておく
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WINDOW = 10  # 移動平均の幅（1 回ごとの損失はばらつきが大きい）


def main() -> None:
    seed_everything(0)
    torch.set_num_threads(1)
    cfg = load_listing("ch13/01_config.py")
    tr = load_listing("ch13/06_train.py")
    _, hist = tr.train(cfg.Config())

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.5, 3))
    steps = np.arange(1, len(hist.train_loss) + 1)
    ax1.plot(steps, hist.train_loss, color="#4c72b0", alpha=0.25, lw=0.8)
    kernel = np.ones(WINDOW) / WINDOW
    smooth = np.convolve(hist.train_loss, kernel, mode="valid")
    ax1.plot(steps[WINDOW - 1 :], smooth, color="#4c72b0", label="学習")
    ax1.plot(
        hist.eval_steps, hist.val_loss, "o-", color="#c44e52", label="検証"
    )
    ax1.set_yscale("log")
    ax1.set_xlabel("更新の回数")
    ax1.set_ylabel("損失（出力の部分だけ）")
    ax1.legend()
    ax1.grid(alpha=0.3)

    ax2.plot(
        hist.eval_steps,
        [100 * e for e in hist.val_exact],
        "s-",
        color="#55a868",
    )
    ax2.set_ylim(0, 105)
    ax2.set_xlabel("更新の回数")
    ax2.set_ylabel("検証データの完全一致率（%）")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
