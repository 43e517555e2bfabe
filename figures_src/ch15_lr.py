"""第15章: 学習率が大きすぎるときの損失と勾配ノルム。

benchmarks/results/ch15_failures.json の lr_* と baseline の記録を描く。
学習の損失は 1 ステップごとに揺れるので、10 ステップの移動平均にする。
"""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
from _figlib import ROOT, FigureWriter, seed_everything

RESULTS = ROOT / "benchmarks" / "results" / "ch15_failures.json"
RUNS = {
    "lr_1": ("学習率 1.0", "C3", "-"),
    "lr_1_fixed": ("学習率 1.0 ＋ウォームアップ・クリップ", "C3", ":"),
    "lr_0.03": ("学習率 0.03", "C1", "-"),
    "lr_0.03_fixed": ("学習率 0.03 ＋ウォームアップ・クリップ", "C1", ":"),
    "baseline": ("学習率 0.003 ＋ウォームアップ・クリップ", "C0", "-"),
}


def smooth(values: list[float], window: int = 10) -> np.ndarray:
    """直前の window 個の移動平均（始めは揃うまでの平均）。"""
    x = np.asarray(values, dtype=float)
    csum = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - window, 0)
    result: np.ndarray = (csum[idx] - csum[lo]) / (idx - lo)
    return result


def main() -> None:
    seed_everything(0)
    runs = json.loads(RESULTS.read_text(encoding="utf-8"))["runs"]
    fig, (ax_l, ax_g) = plt.subplots(1, 2, figsize=(10, 3.6))
    limit = max(r["step"] for r in runs["lr_0.03_fixed"]["records"])
    for name, (label, color, style) in RUNS.items():
        recs = [r for r in runs[name]["records"] if r["step"] <= limit]
        steps = [r["step"] for r in recs]
        ax_l.plot(
            steps,
            smooth([r["train_loss"] for r in recs]),
            color=color,
            linestyle=style,
            label=label,
        )
        ax_g.plot(
            steps,
            smooth([r["grad_norm"] for r in recs]),
            color=color,
            linestyle=style,
            lw=1,
        )
    ax_l.axhline(np.log(65), color="gray", lw=0.8, linestyle="--")
    ax_l.set_yscale("log")
    ax_l.set_xlabel("ステップ")
    ax_l.set_ylabel("学習データの損失（対数）")
    ax_l.grid(alpha=0.3)
    ax_g.set_yscale("log")
    ax_g.set_xlabel("ステップ")
    ax_g.set_ylabel("勾配ノルム（クリップ前、対数）")
    ax_g.grid(alpha=0.3)
    fig.legend(
        loc="lower center", ncols=2, fontsize=8, bbox_to_anchor=(0.5, -0.12)
    )
    fig.tight_layout()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
