"""第18章: 大きさの違う GPT の損失の曲線と、最後の損失とパラメータ数。

benchmarks/bench_ch18_scaling.py が書いた
benchmarks/results/ch18_scaling.json を描く。左は計算量（6ND）に対する
検証の損失、右は最後の損失と埋め込みを除くパラメータ数（両対数）に
べき乗則を当てはめた直線。
"""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
from _figlib import ROOT, FigureWriter, seed_everything
from matplotlib.ticker import NullFormatter, ScalarFormatter

RESULTS = ROOT / "benchmarks" / "results" / "ch18_scaling.json"


def main() -> None:
    seed_everything(0)
    record = json.loads(RESULTS.read_text(encoding="utf-8"))
    runs = record["runs"]
    fig, (ax_c, ax_n) = plt.subplots(1, 2, figsize=(9, 3.6))
    for run in runs:
        pts = [p for p in run["curve"] if p["step"] > 0]
        ax_c.plot(
            [p["flops"] for p in pts],
            [p["val_loss"] for p in pts],
            marker="o",
            markersize=3,
            label=f"{run['n_layers']} 層・d={run['d_model']}"
            f"（N={run['n_non_embedding']:,}）",
        )
    ax_c.set_xscale("log")
    ax_c.set_xlabel("計算量 C ≈ 6ND（FLOP）")
    ax_c.set_ylabel("検証の損失")
    ax_c.legend(fontsize=7)

    ns = np.array([r["n_non_embedding"] for r in runs], dtype=float)
    losses = np.array([r["final_val_loss"] for r in runs])
    a, alpha = record["fit"]["a"], record["fit"]["alpha"]
    grid = np.geomspace(ns.min(), ns.max(), 50)
    ax_n.scatter(ns, losses, zorder=3)
    ax_n.plot(
        grid,
        a * grid**-alpha,
        linestyle="--",
        color="gray",
        label=f"当てはめ L ∝ N^(−{alpha:.3f})",
    )
    ax_n.set_xscale("log")
    ax_n.set_yscale("log")
    # 損失の範囲は狭いので、10 の累乗ではなくふつうの数で目盛りを書く
    ax_n.yaxis.set_major_formatter(ScalarFormatter())
    ax_n.yaxis.set_minor_formatter(NullFormatter())
    ax_n.set_yticks([2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7])
    ax_n.set_xlabel("埋め込みを除くパラメータ数 N")
    ax_n.set_ylabel("最後の検証の損失")
    ax_n.legend(fontsize=8)
    fig.tight_layout()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
