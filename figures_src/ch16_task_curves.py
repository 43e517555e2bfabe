"""第16章: 系列変換の課題の学習曲線（検証の損失と完全一致率）。

benchmarks/bench_tasks.py が書いた benchmarks/results/tasks.json の
学習の記録（history）を描く。ファイルが無ければ、極小の設定で
その場で学習して描く（数秒。曲線の形は本物と違う）。
"""

from __future__ import annotations

import json
from typing import Any

import matplotlib.pyplot as plt
import torch
from _figlib import ROOT, FigureWriter, seed_everything

from easy_transformer.seq2seq_experiment import (
    seq2seq_config,
    train_seq2seq,
)

RESULTS = ROOT / "benchmarks" / "results" / "tasks.json"
TASKS = {
    "copy": "コピー",
    "reverse": "反転",
    "sort": "ソート",
    "rpn": "逆ポーランド記法",
}


def load_records() -> dict[str, dict[str, Any]]:
    """課題ごとの結果（history を含む）を読む。無ければ計算する。"""
    if RESULTS.exists():
        saved = json.loads(RESULTS.read_text(encoding="utf-8"))
        tasks: dict[str, dict[str, Any]] = saved["tasks"]
        if all(task in tasks for task in TASKS):
            return tasks
    records = {}
    for task in TASKS:
        config = seq2seq_config(
            task, tiny=True, max_steps=30, eval_interval=10
        )
        result = train_seq2seq(
            task, config=config, device="cpu", progress=False
        )
        records[task] = result.to_dict()
    return records


def main() -> None:
    seed_everything(0)
    # スレッドの数で浮動小数点の足し算の順が変わらないように
    torch.set_num_threads(1)
    records = load_records()
    fig, (ax_loss, ax_em) = plt.subplots(1, 2, figsize=(9, 3.6))
    for task, label in TASKS.items():
        record = records[task]
        evals = [r for r in record["history"] if "val_exact_match" in r]
        steps = [r["step"] for r in evals]
        test = 100 * record["test_exact_match"]
        ax_loss.plot(
            steps,
            [r["val_loss"] for r in evals],
            marker="o",
            markersize=3,
            label=label,
        )
        ax_em.plot(
            steps,
            [100 * r["val_exact_match"] for r in evals],
            marker="o",
            markersize=3,
            label=f"{label}（テスト {test:.1f}%）",
        )
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("ステップ")
    ax_loss.set_ylabel("検証データの損失")
    ax_loss.legend(fontsize=8)
    ax_em.set_xlabel("ステップ")
    ax_em.set_ylabel("検証データの完全一致率（%）")
    ax_em.set_ylim(0, 102)
    ax_em.legend(fontsize=8, loc="lower right")
    for ax in (ax_loss, ax_em):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
