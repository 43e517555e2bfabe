"""第17章: GPT が生成したミニ言語の行が、どの段階で止まったかの内訳。

benchmarks/bench_ch17_llama.py が benchmarks/results/ch17_llama.json に
書いた値（GPT-2 形式のモデル）を描く。図の中では計測しない。
"""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
from _figlib import ROOT, FigureWriter, seed_everything

RESULTS = ROOT / "benchmarks" / "results" / "ch17_llama.json"
# 下から上へ、処理の進む順に並べる（字句解析 → 構文解析 → 評価）
KINDS = {
    "lex_error": ("字句解析のエラー", "#8172b2"),
    "parse_error": ("構文解析のエラー", "#c44e52"),
    "undefined": ("評価: 未定義の変数", "#dd8452"),
    "div_zero": ("評価: 0 による除算", "#ccb974"),
    "runs": ("評価まで成功", "#55a868"),
}


def main() -> None:
    seed_everything(0)
    data = json.loads(RESULTS.read_text(encoding="utf-8"))["gpt2"]
    counts = data["kinds"]
    total = data["n_generated_programs"]
    fig, ax = plt.subplots(figsize=(6.4, 3.0))
    labels = [label for label, _ in KINDS.values()]
    values = [counts.get(kind, 0) for kind in KINDS]
    colors = [color for _, color in KINDS.values()]
    bars = ax.barh(labels, values, color=colors)
    for bar, value in zip(bars, values, strict=True):
        ax.text(
            bar.get_width() + total * 0.01,
            bar.get_y() + bar.get_height() / 2,
            f"{value} 行（{100 * value / total:.1f}%）",
            va="center",
            fontsize=9,
        )
    ax.set_xlim(0, max(values) * 1.35)
    ax.set_xlabel(f"行数（生成した {total} 行のうち）")
    # 構文解析器が受理したのは、評価の 3 つの帯の合計
    ax.axhline(1.5, color="gray", linestyle=":", linewidth=0.8)
    ax.text(
        max(values) * 1.33,
        1.6,
        "↑ 構文解析器が受理",
        ha="right",
        va="bottom",
        fontsize=8,
        color="gray",
    )
    fig.tight_layout()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
