"""第4章: 最小の学習ループで、損失が下がっていく様子。

学習ループとデータは本文のリスト（listings/ch04/02_train_loop.py）を使う。
左: 直線の回帰を、学習率を変えて学習したときの損失。
右: 括弧の釣り合いの分類で、学習データの損失とテストデータの正答率。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from _figlib import FigureWriter, load_listing, seed_everything
from torch import nn

LEARNING_RATES = {0.01: "#edae49", 0.1: "#6a4c93", 1.05: "#d1495b"}
STEPS = 100


def main() -> None:
    seed_everything(0)
    torch.set_num_threads(1)
    tl = load_listing("ch04/02_train_loop.py")
    mlp = load_listing("ch04/01_tiny_mlp.py")
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3))

    xs, ys = tl.line_data(100, seed=0)
    for lr, color in LEARNING_RATES.items():
        torch.manual_seed(0)
        model = nn.Linear(1, 1)
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        hist = tl.train(model, opt, F.mse_loss, xs, ys, STEPS)
        left.plot(hist, color=color, label=f"学習率 {lr}")
    left.set_yscale("log")
    left.set_ylim(1e-3, 1e3)
    left.set_xlabel("更新の回数")
    left.set_ylabel("損失（平均二乗誤差）")
    left.set_title("直線の回帰（SGD）", fontsize=9)
    left.legend(fontsize=8)

    strings, bx, by = tl.bracket_data(10)
    perm = torch.randperm(
        len(strings), generator=torch.Generator().manual_seed(0)
    )
    train_idx, test_idx = perm[:176], perm[176:]
    torch.manual_seed(0)
    model = mlp.TinyMLP(10, 32, 2)
    adam = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses, accs = [], []
    for _ in range(STEPS):
        losses += tl.train(
            model, adam, F.cross_entropy, bx[train_idx], by[train_idx], 1
        )
        with torch.no_grad():
            guess = model(bx[test_idx]).argmax(dim=1)
        accs.append((guess == by[test_idx]).float().mean().item())
    right.plot(losses, color="#6a4c93", label="学習データの損失")
    right.set_xlabel("更新の回数")
    right.set_ylabel("損失（交差エントロピー）")
    right.set_yscale("log")
    twin = right.twinx()
    twin.plot(accs, color="#00798c", ls="--", label="テストデータの正答率")
    twin.set_ylabel("正答率")
    twin.set_ylim(0.5, 1.02)
    right.set_title("括弧の釣り合いの分類（Adam）", fontsize=9)
    lines = right.get_lines() + twin.get_lines()
    right.legend(
        lines,
        [ln.get_label() for ln in lines],
        fontsize=8,
        loc="center right",
    )
    fig.subplots_adjust(wspace=0.45)
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
