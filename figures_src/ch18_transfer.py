"""第18章: 事前学習の有無と、ラベルの数に対するテストの正解率。

benchmarks/bench_ch18_transfer.py が書いた
benchmarks/results/ch18_transfer.json の curve を描く（種ごとの点と、
種の平均の線）。
"""

from __future__ import annotations

import json
import statistics

import matplotlib.pyplot as plt
from _figlib import ROOT, FigureWriter, seed_everything

RESULTS = ROOT / "benchmarks" / "results" / "ch18_transfer.json"


def main() -> None:
    seed_everything(0)
    record = json.loads(RESULTS.read_text(encoding="utf-8"))
    curve = record["curve"]
    counts = sorted({r["n_labels"] for r in curve})
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for pretrained, label, marker in (
        (True, "事前学習した重みから", "o"),
        (False, "乱数の初期値から", "s"),
    ):
        runs = [r for r in curve if r["pretrained"] is pretrained]
        means = [
            100
            * statistics.mean(
                r["test_accuracy"] for r in runs if r["n_labels"] == n
            )
            for n in counts
        ]
        line = ax.plot(counts, means, marker=marker, label=label)[0]
        ax.scatter(
            [r["n_labels"] for r in runs],
            [100 * r["test_accuracy"] for r in runs],
            color=line.get_color(),
            alpha=0.35,
            s=14,
        )
    ax.axhline(50, color="gray", linestyle=":", linewidth=1)
    ax.text(counts[0], 51, "当て推量（50%）", fontsize=8, color="gray")
    ax.set_xscale("log")
    ax.set_xticks(counts, [str(n) for n in counts])
    ax.set_xlabel("ラベル付きの例の数")
    ax.set_ylabel("テストの正解率（%）")
    ax.legend(fontsize=8)
    fig.tight_layout()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
