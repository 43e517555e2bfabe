"""第15章: 正常な学習の監視（損失、学習率、勾配ノルム、層ごとの勾配）。

benchmarks/bench_ch15_failures.py が書いた
benchmarks/results/ch15_failures.json の baseline の記録を描く。
損失の図は easy_transformer.viz.plot_training_curves で描く。
"""

from __future__ import annotations

import json
import math
from typing import Any

import matplotlib.pyplot as plt
from _figlib import ROOT, FigureWriter, seed_everything

from easy_transformer.viz import plot_training_curves

RESULTS = ROOT / "benchmarks" / "results" / "ch15_failures.json"
VOCAB_SIZE = 65  # tinyshakespeare の文字の種類


def load_run(name: str) -> dict[str, Any]:
    data = json.loads(RESULTS.read_text(encoding="utf-8"))
    run: dict[str, Any] = data["runs"][name]
    return run


def unclipped_layer_norms(run: dict[str, Any]) -> dict[str, list[float]]:
    """クリップ前の層ごとの勾配ノルムに戻す。

    GradNormMonitor は train_step の後に勾配を読むので、値はクリップ
    した後のもの。clip_grad_norm_ は全体のノルムが上限 c を超えたとき
    全勾配に同じ c / 全体のノルム を掛けるので、その逆数を掛ければ戻る。
    """
    clip = run["config"]["grad_clip"]
    totals = [r["grad_norm"] for r in run["records"]]
    scale = [max(1.0, t / clip) if clip > 0 else 1.0 for t in totals]
    return {
        name: [v * s for v, s in zip(values, scale, strict=True)]
        for name, values in run["layer_norms"].items()
    }


def main() -> None:
    seed_everything(0)
    writer = FigureWriter(__file__)
    run = load_run("baseline")
    records = run["records"]

    fig = plot_training_curves(records, ("train_loss", "val_loss"))
    ax = fig.axes[0]
    ax.axhline(math.log(VOCAB_SIZE), color="gray", linestyle="--", lw=1)
    ax.annotate(
        f"ln V = ln {VOCAB_SIZE} ≈ {math.log(VOCAB_SIZE):.2f}",
        (len(records) * 0.55, math.log(VOCAB_SIZE) - 0.2),
        fontsize=9,
        color="gray",
    )
    fig.set_size_inches(6.4, 3.4)
    writer.save(fig, "loss")

    steps = [r["step"] for r in records]
    fig, (ax_lr, ax_g) = plt.subplots(1, 2, figsize=(9, 3.2))
    ax_lr.plot(steps, [r["lr"] for r in records])
    ax_lr.set_xlabel("ステップ")
    ax_lr.set_ylabel("学習率")
    ax_lr.set_title("学習率の予定（ウォームアップ＋コサイン）", fontsize=10)
    ax_lr.grid(alpha=0.3)
    ax_g.plot(steps, [r["grad_norm"] for r in records], lw=0.8)
    clip = run["config"]["grad_clip"]
    ax_g.axhline(
        clip,
        color="gray",
        linestyle="--",
        lw=1,
        label=f"クリップの上限 {clip:g}",
    )
    ax_g.legend(fontsize=8, loc="upper right")
    ax_g.set_xlabel("ステップ")
    ax_g.set_ylabel("勾配ノルム（クリップ前）")
    ax_g.set_title("全体の勾配ノルム", fontsize=10)
    ax_g.grid(alpha=0.3)
    fig.tight_layout()
    writer.save(fig, "lr-grad")

    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for name, values in unclipped_layer_norms(run).items():
        ax.plot(steps, values, lw=0.8, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("ステップ")
    ax.set_ylabel("勾配ノルム（クリップ前、対数）")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right", ncols=2)
    writer.save(fig, "layers")


if __name__ == "__main__":
    main()
