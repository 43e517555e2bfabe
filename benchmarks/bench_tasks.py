"""系列変換の課題の学習時間と完全一致率を測る（CPU）。

seq2seq_experiment.TASK_CONFIGS（本格的な設定）で課題を 1 つずつ順に学習し、
学習の壁時計の時間・CPU 時間と、テスト（学習と同じレベル、学習と
重複しない入力）と汎化テスト（より高いレベル）の完全一致率を記録する。

目標（2 コアの CPU）:
- copy・reverse・sort: 各 2 分以内の学習で、テストの完全一致率 99% 以上
- rpn（中置記法 → 逆ポーランド記法）: 5 分以内で 99% 以上

    .venv/bin/python benchmarks/bench_tasks.py
    .venv/bin/python benchmarks/bench_tasks.py --tasks rpn --threads 2

結果は `benchmarks/results/tasks.json` に書く（--tasks で一部だけを
測ったときは、その課題の項目だけを書き換える）。学習曲線（history）も
入れる。rpn の学習済みモデルは `benchmarks/results/rpn_model.pt` に
置く（図 figures_src/ch16_rpn_attention.py が読む）。

このマシンはほかの作業と CPU を分け合うことがあるので、壁時計の
時間は揺れる。既定では 1 スレッドで測る。1 スレッドなら 2 コアの
うち 1 つしか使わないので、2 コアを専有できるマシンでの時間の上限の
目安になる。測り始めと終わりの load average も記録する。
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import environment, write_json

from easy_transformer.model_io import MODEL_FILE
from easy_transformer.seq2seq_experiment import TASK_CONFIGS, train_seq2seq

RESULTS = Path(__file__).resolve().parent / "results"
SUMMARY = RESULTS / "tasks.json"
RPN_MODEL = RESULTS / "rpn_model.pt"

# 学習時間の目標（秒）と完全一致率の目標
TIME_LIMITS = {"copy": 120, "reverse": 120, "sort": 120, "rpn": 300}
EXACT_MATCH_TARGET = 0.99


def run_task(task: str, seed: int) -> dict[str, Any]:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        result = train_seq2seq(
            task, seed=seed, out_dir=tmp, device="cpu", progress=True
        )
        if task == "rpn":
            shutil.copyfile(Path(tmp) / MODEL_FILE, RPN_MODEL)
    limit = TIME_LIMITS.get(task)
    record = result.to_dict()
    record.update(
        time_limit_seconds=limit,
        exact_match_target=EXACT_MATCH_TARGET if limit else None,
        passed=(
            None
            if limit is None
            else result.train_seconds <= limit
            and result.test_exact_match >= EXACT_MATCH_TARGET
        ),
        # CPU 時間で見た目標（ほかのプロセスとの取り合いを除いた目安）
        passed_cpu_time=(
            None
            if limit is None
            else result.cpu_seconds <= limit
            and result.test_exact_match >= EXACT_MATCH_TARGET
        ),
        load_average_before=load_before,
        load_average_after=os.getloadavg(),
    )
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=["copy", "reverse", "sort", "rpn"],
        choices=list(TASK_CONFIGS),
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    RESULTS.mkdir(parents=True, exist_ok=True)

    summary: dict[str, Any] = {}
    if SUMMARY.exists():
        summary = json.loads(SUMMARY.read_text(encoding="utf-8"))
    summary.setdefault(
        "description", "系列変換の課題の学習時間と完全一致率"
    )
    summary.setdefault("tasks", {})
    for task in args.tasks:
        print(f"== {task} ==", flush=True)
        t0 = time.perf_counter()
        record = run_task(task, args.seed)
        record["environment"] = environment()
        summary["tasks"][task] = record
        write_json(SUMMARY, summary)
        print(
            f"{task}: 学習 {record['train_seconds']:.1f} 秒（CPU "
            f"{record['cpu_seconds']:.1f} 秒）、テスト "
            f"{record['test_exact_match']:.3f}、汎化 "
            f"{record['general_exact_match']:.3f}、合格 {record['passed']}"
            f"（全体 {time.perf_counter() - t0:.0f} 秒）",
            flush=True,
        )


if __name__ == "__main__":
    main()
