"""第15章: 因果マスクの漏れ、過学習、パディングの症状。

benchmarks/results/ch15_failures.json の no_causal・overfit・baseline の
記録と、逆順の課題（padding）の結果を描く。1 つのスクリプトで
3 つの図（-causal、-overfit、-padding）を作る。
"""

from __future__ import annotations

import json
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from _figlib import ROOT, FigureWriter, seed_everything

RESULTS = ROOT / "benchmarks" / "results" / "ch15_failures.json"


def smooth(values: list[float], window: int = 10) -> np.ndarray:
    """直前の window 個の移動平均（始めは揃うまでの平均）。"""
    x = np.asarray(values, dtype=float)
    csum = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - window, 0)
    result: np.ndarray = (csum[idx] - csum[lo]) / (idx - lo)
    return result


def curves(ax: Any, run: dict[str, Any], label: str, color: str) -> None:
    """学習の損失（移動平均、実線）と検証の損失（点線と印）を描く。"""
    recs = run["records"]
    ax.plot(
        [r["step"] for r in recs],
        smooth([r["train_loss"] for r in recs]),
        color=color,
        label=f"{label}：学習",
    )
    val = [r for r in recs if "val_loss" in r]
    ax.plot(
        [r["step"] for r in val],
        [r["val_loss"] for r in val],
        color=color,
        linestyle=":",
        marker="o",
        markersize=3,
        label=f"{label}：検証",
    )


def causal(writer: FigureWriter, runs: dict[str, Any]) -> None:
    fig, (ax_c, ax_b) = plt.subplots(
        1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [3, 2]}
    )
    curves(ax_c, runs["baseline"], "因果マスクあり", "C0")
    curves(ax_c, runs["no_causal"], "因果マスクなし", "C3")
    ax_c.set_xlabel("ステップ")
    ax_c.set_ylabel("損失")
    ax_c.grid(alpha=0.3)
    ax_c.legend(fontsize=8)
    names = [("baseline", "マスクあり"), ("no_causal", "マスクなし")]
    x = np.arange(len(names))
    tf = [runs[n]["checks"]["teacher_forced_loss"] for n, _ in names]
    pf = [runs[n]["checks"]["prefix_loss"] for n, _ in names]
    ax_b.bar(x - 0.2, tf, 0.4, label="全体を一度に読む（学習と同じ）")
    ax_b.bar(x + 0.2, pf, 0.4, label="接頭辞だけを読む（生成と同じ）")
    for xi, (a, b) in enumerate(zip(tf, pf, strict=True)):
        ax_b.annotate(f"{a:.2f}", (xi - 0.2, a), ha="center", va="bottom")
        ax_b.annotate(f"{b:.2f}", (xi + 0.2, b), ha="center", va="bottom")
    ax_b.axhline(
        np.log(65),
        color="gray",
        linestyle="--",
        lw=1,
        label="ln V（一様な予測）",
    )
    ax_b.set_xticks(x, [label for _, label in names])
    ax_b.set_ylabel("検証データの損失")
    ax_b.set_ylim(0, max(pf + tf) * 1.3)
    ax_b.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    writer.save(fig, "causal")


def overfit(writer: FigureWriter, runs: dict[str, Any]) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    curves(ax, runs["overfit"], "3,000 文字", "C3")
    curves(ax, runs["baseline"], "全部（約 100 万文字）", "C0")
    val = [r for r in runs["overfit"]["records"] if "val_loss" in r]
    best = min(val, key=lambda r: r["val_loss"])
    ax.annotate(
        "検証の損失の最小",
        (best["step"], best["val_loss"]),
        xytext=(best["step"] + 40, best["val_loss"] - 0.6),
        arrowprops={"arrowstyle": "->", "color": "gray"},
        fontsize=9,
    )
    ax.set_xlabel("ステップ")
    ax.set_ylabel("損失")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    writer.save(fig, "overfit")


def padding(writer: FigureWriter, result: dict[str, Any]) -> None:
    fig, ax = plt.subplots(figsize=(6.0, 3.2))
    for key, label, color in [
        ("masked", "パディングを隠す", "C0"),
        ("unmasked", "パディングを隠さない", "C3"),
    ]:
        acc = result[key]["accuracy"]
        pads = [int(n) for n in acc]
        ax.plot(
            pads,
            [100 * acc[str(n)] for n in pads],
            marker="o",
            color=color,
            label=label,
        )
    ax.set_xlabel("入力の後ろに足した <pad> の数")
    ax.set_ylabel("完全一致率（%）")
    ax.set_ylim(-5, 105)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    writer.save(fig, "padding")


def main() -> None:
    seed_everything(0)
    data = json.loads(RESULTS.read_text(encoding="utf-8"))
    writer = FigureWriter(__file__)
    causal(writer, data["runs"])
    overfit(writer, data["runs"])
    padding(writer, data["extra"]["padding"])


if __name__ == "__main__":
    main()
