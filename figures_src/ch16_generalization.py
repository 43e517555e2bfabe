"""第16章: 学習より深い式への汎化（手ごとの深さ別の完全一致率と、長さ別）。

benchmarks/bench_generalization.py が書いた
benchmarks/results/generalization.json を読み、2 つの図を描く。

- 左: 手（基準、RoPE、深い式を混ぜる、…）ごとの、式の深さ別の
  完全一致率。点は種の平均、縦の線は種の間の最小〜最大。
- 右: 基準のモデルの完全一致率を、入力の長さの区間ごとに、深さで
  色分けして描く。同じ長さでも深さで正解率が違うかを見る。
"""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import pairwise
from statistics import mean
from typing import Any

import matplotlib.pyplot as plt
from _figlib import ROOT, FigureWriter, seed_everything

RESULTS = ROOT / "benchmarks" / "results" / "generalization.json"
LABELS = {
    "baseline": "基準（正弦波の位置・2 層）",
    "rope": "RoPE",
    "mix4": "深さ 4 を 5% 混ぜる",
    "stack": "スタックの高さを書かせる",
    "layers4": "4 層",
}
DEPTHS = ["1", "2", "3", "4", "5", "6"]
LENGTH_EDGES = [0, 12, 18, 24, 30, 36, 44, 64]


def load_runs() -> dict[str, list[dict[str, Any]]]:
    data = json.loads(RESULTS.read_text(encoding="utf-8"))
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for key in sorted(data["runs"]):
        record = data["runs"][key]
        groups[record["variant"]].append(record)
    return groups


def main() -> None:
    seed_everything(0)
    groups = load_runs()
    fig, (ax_d, ax_l) = plt.subplots(1, 2, figsize=(10, 3.8))
    xs = [int(d) for d in DEPTHS]
    markers = "osD^v"
    for i, (name, label) in enumerate(LABELS.items()):
        if name not in groups:
            continue
        records = groups[name]
        vals = [
            [100 * r["exact_match_by_depth"][d] for r in records]
            for d in DEPTHS
        ]
        shift = (i - 2) * 0.06  # 点が重ならないように少しずらす
        ax_d.errorbar(
            [x + shift for x in xs],
            [mean(v) for v in vals],
            yerr=[
                [mean(v) - min(v) for v in vals],
                [max(v) - mean(v) for v in vals],
            ],
            marker=markers[i],
            markersize=4,
            capsize=2,
            label=f"{label}（種 {len(records)}）",
        )
    ax_d.axvspan(0.5, 3.5, color="0.9", zorder=0)
    ax_d.text(2, 4, "学習した深さ", ha="center", fontsize=8)
    ax_d.set_xticks(xs)
    ax_d.set_xlabel("式の深さ（木の高さ）")
    ax_d.set_ylabel("完全一致率（%）")
    ax_d.set_ylim(-2, 102)
    ax_d.legend(fontsize=7, loc="lower left")
    ax_d.grid(alpha=0.3)

    rows = [x for r in groups["baseline"] for x in r["rows"]]
    for d in DEPTHS:
        sel = [x for x in rows if str(x["depth"]) == d]
        mids, rates = [], []
        for lo, hi in pairwise(LENGTH_EDGES):
            cell = [x for x in sel if lo < x["length"] <= hi]
            if len(cell) >= 15:  # 例が少ない区間は描かない
                mids.append((lo + hi) / 2)
                rates.append(100 * mean(x["correct"] for x in cell))
        if mids:
            ax_l.plot(
                mids, rates, marker="o", markersize=3, label=f"深さ {d}"
            )
    ax_l.set_xlabel("入力の長さ（文字数）")
    ax_l.set_ylabel("完全一致率（%）")
    ax_l.set_ylim(-2, 102)
    ax_l.legend(fontsize=7)
    ax_l.grid(alpha=0.3)
    ax_l.set_title("基準のモデル: 長さと深さ", fontsize=9)
    fig.tight_layout()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
