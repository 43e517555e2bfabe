"""第14章: 注意の計算 1 回が余計に使うメモリと系列長の関係。

benchmarks/bench_ch14_attention.py が測って
benchmarks/results/ch14_attention.json に書いた値を描く。
図の中では計測しない（図は毎回同じバイト列でなければならないので）。
"""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
from _figlib import ROOT, FigureWriter, seed_everything

RESULTS = ROOT / "benchmarks" / "results" / "ch14_attention.json"
STYLE = {
    "naive": ("素朴な注意（(n, n) を作る）", "o-", "#c44e52"),
    "tiled": ("タイル版（オンラインの softmax）", "s-", "#4c72b0"),
    "sdpa": ("F.scaled_dot_product_attention", "^--", "#55a868"),
}


def main() -> None:
    seed_everything(0)
    memory = json.loads(RESULTS.read_text(encoding="utf-8"))["memory"]
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for method, (label, marker, color) in STYLE.items():
        values = memory["peak_extra_mib"][method]
        ns = [int(n) for n in values]
        slope = memory["slope_last_doubling"][method]
        ax.plot(
            ns,
            list(values.values()),
            marker,
            color=color,
            label=f"{label}（傾き {slope:.2f}）",
        )
    # 目安の線: 傾き 2（素朴な版の最初の点を通る）と傾き 1（タイル版の
    # 最後の点を通る）
    for method, power, at in (("naive", 2, 0), ("tiled", 1, -1)):
        values = memory["peak_extra_mib"][method]
        n0, m0 = int(list(values)[at]), list(values.values())[at]
        xs = [1024, 16384]
        ax.plot(
            xs,
            [m0 * (x / n0) ** power for x in xs],
            ":",
            color="gray",
            linewidth=0.8,
        )
        ax.annotate(
            f"傾き {power}",
            (xs[-1], m0 * (xs[-1] / n0) ** power),
            fontsize=8,
            color="gray",
            ha="right",
            va="bottom",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    xticks = [1024, 2048, 4096, 8192, 16384]
    ax.set_xticks(xticks, [str(x) for x in xticks])
    yticks = [1, 4, 16, 64, 256, 1024, 4096]
    ax.set_yticks(yticks, [str(y) for y in yticks])
    ax.set_xlabel("系列長 n")
    ax.set_ylabel("余計に使った最大常駐メモリ（MiB）")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
