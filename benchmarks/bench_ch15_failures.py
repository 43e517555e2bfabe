"""第15章: 学習の失敗をわざと起こし、症状を記録する（CPU、数分〜十数分）。

listings/ch15/ の 3 つのリストを使い、次の学習を走らせる。

- baseline: 正常な学習（学習率 3e-3、ウォームアップ、クリップ）
- lr_*: 学習率が大きすぎる学習と、ウォームアップ・クリップで直したもの
- no_causal: 因果マスクを外した学習
- overfit*: 学習データを先頭の数千文字に減らした学習（と、ドロップアウト）
- padding: 逆順の課題を、パディングのマスクあり・なしで学習

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ch15_failures.py

結果は benchmarks/results/ch15_failures.json に、各学習の指標の記録
（Trainer の JSON Lines と同じ形）と、本文に載せる数値（"book"）を書く。
"""

from __future__ import annotations

import argparse
import importlib
import math
import random
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from _common import environment, write_json

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "ch15_failures.json"

monitor = importlib.import_module("listings.ch15.01_monitor")
leak = importlib.import_module("listings.ch15.02_causal_leak")
padding = importlib.import_module("listings.ch15.03_padding")

BASE = monitor.RunConfig()
RUNS: dict[str, Any] = {
    "baseline": replace(BASE, max_steps=400),
    # 学習率だけを大きくし、ウォームアップもクリップもしない
    "lr_1": replace(
        BASE,
        lr=1.0,
        min_lr=1.0,
        warmup_steps=0,
        grad_clip=0.0,
        max_steps=150,
    ),
    "lr_0.03": replace(
        BASE,
        lr=0.03,
        min_lr=0.03,
        warmup_steps=0,
        grad_clip=0.0,
        max_steps=200,
    ),
    # 同じ最大の学習率に、ウォームアップとクリップを足す
    "lr_0.03_fixed": replace(
        BASE,
        lr=0.03,
        min_lr=0.003,
        warmup_steps=100,
        grad_clip=1.0,
        max_steps=200,
    ),
    "lr_1_fixed": replace(
        BASE,
        lr=1.0,
        min_lr=0.1,
        warmup_steps=100,
        grad_clip=1.0,
        max_steps=200,
    ),
    # 漏れを使いこなすまでには時間がかかるので、長めに学習する
    "no_causal": replace(
        BASE, causal=False, max_steps=1200, eval_interval=100
    ),
    # 学習データを先頭の 3,000 文字だけにする
    "overfit": replace(BASE, train_chars=3000, max_steps=500),
    # 同じ 3,000 文字に、ドロップアウトを足す
    "overfit_dropout": replace(
        BASE, train_chars=3000, max_steps=500, dropout=0.3
    ),
}


def fmt(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def causal_checks(result: Any, cfg: Any) -> dict[str, float]:
    """検証データの 8 本の窓で、漏れの検査と 2 つの損失を測る。"""
    torch.manual_seed(1)
    x, y = monitor.windows(result.corpus.val, cfg.block_size, 8)()
    return {
        "teacher_forced_loss": leak.teacher_forced_loss(result.model, x, y),
        "prefix_loss": leak.prefix_loss(result.model, x, y),
        "future_leak": leak.future_leak(
            result.model, x, cfg.block_size // 2
        ),
    }


def sample_text(result: Any, prompt: str, n: int = 60) -> str:
    """貪欲法で n 文字を作る。窓は直前の block_size 文字に限る。"""
    model = result.model.eval()
    block = model.config.block_size
    ids = result.corpus.encode(prompt)[None]
    with torch.no_grad():
        for _ in range(n):
            next_id = model(ids[:, -block:])[:, -1].argmax(-1)
            ids = torch.cat([ids, next_id[:, None]], dim=1)
    return result.corpus.decode(ids[0, len(prompt) :])


def padding_runs(steps: int) -> dict[str, Any]:
    rng = random.Random(123)
    tests = [s for s in padding.random_sources(rng, 400) if len(s) >= 1]
    pads = [0, 2, 4, 8, 16]
    out: dict[str, Any] = {}
    for masked in (True, False):
        model, history = padding.train_reverse(masked, max_steps=steps)
        src = padding.make_batch(tests)[0]
        out["masked" if masked else "unmasked"] = {
            "history": history,
            "accuracy": {
                str(n): padding.accuracy(model, tests, n, masked)
                for n in pads
            },
            "effect": {
                str(n): padding.padding_effect(model, src, n, masked)
                for n in pads[1:]
            },
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="走らせる学習の名前")
    parser.add_argument(
        "--book",
        action="store_true",
        help="学習せず、本文の数値だけ作り直す",
    )
    args = parser.parse_args()
    if args.book:
        args.only = ["(なし)"]
    torch.set_num_threads(1)
    old = {}
    if RESULTS.exists():
        import json

        old = json.loads(RESULTS.read_text(encoding="utf-8"))
    runs: dict[str, Any] = old.get("runs", {})
    extra: dict[str, Any] = old.get("extra", {})
    t0 = time.perf_counter()
    for name, cfg in RUNS.items():
        if args.only and name not in args.only:
            continue
        print(name, flush=True)
        result = monitor.train_monitored(cfg)
        entry: dict[str, Any] = {
            "config": asdict(cfg),
            "records": result.records,
            "layer_norms": result.layer_norms,
        }
        if name in ("baseline", "no_causal"):
            entry["checks"] = causal_checks(result, cfg)
            entry["sample"] = sample_text(result, "ROMEO:\n")
        if name == "baseline":
            torch.save(
                result.model.state_dict(),
                ROOT / "benchmarks" / "results" / "ch15_baseline.pt",
            )
        runs[name] = entry
    if not args.only or "padding" in args.only:
        print("padding", flush=True)
        extra["padding"] = padding_runs(600)
    data = {
        "description": "第15章の失敗の実験（文字単位の GPT と逆順の課題）",
        "runs": runs,
        "extra": extra,
        # --only で一部だけ走らせたときは、前の実行の時間に足す
        "seconds": time.perf_counter()
        - t0
        + (old.get("seconds", 0.0) if args.only else 0.0),
        "environment": environment(),
    }
    data["book"] = book_numbers(runs, extra)
    data["book"]["minutes"] = f"{data['seconds'] / 60:.0f}"
    write_json(RESULTS, data)


def _tail_mean(records: list[dict[str, Any]], n: int = 20) -> float:
    """最後の n ステップの学習の損失の平均（1 ステップの値は揺れるので）。"""
    values = [r["train_loss"] for r in records[-n:]]
    return sum(values) / len(values)


def _max(records: list[dict[str, Any]], key: str) -> float:
    return max(r[key] for r in records if key in r)


def _vals(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if "val_loss" in r]


def unigram_entropy() -> float:
    """学習データの文字の出現頻度だけで予測したときの交差エントロピー。"""
    train = monitor.load_corpus().train
    p = torch.bincount(train).double() / len(train)
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def book_numbers(
    runs: dict[str, Any], extra: dict[str, Any]
) -> dict[str, str]:
    """本文に載せる数値を、載せる形の文字列にする。"""
    book: dict[str, str] = {"ln_v": fmt(math.log(65))}
    book["unigram"] = fmt(unigram_entropy())
    model = monitor.make_model(BASE, 65)
    n_params = sum(p.numel() for p in model.parameters())
    book["n_params"] = f"{n_params:,}"
    book["of_ratio"] = f"{n_params / RUNS['overfit'].train_chars:.0f}"
    base = runs["baseline"]
    rec = base["records"]
    book["base_train"] = fmt(_tail_mean(rec))
    book["base_val"] = fmt(_vals(rec)[-1]["val_loss"])
    book["base_max_grad"] = fmt(_max(rec, "grad_norm"), 1)
    clipped = sum(r["grad_norm"] > BASE.grad_clip for r in rec) / len(rec)
    book["base_clip_frac"] = f"{100 * clipped:.0f}%"
    book["base_sample"] = base["sample"].replace("\n", " ").strip()
    for key, name in (("base", "baseline"), ("nc", "no_causal")):
        checks = runs[name]["checks"]
        book[f"{key}_tf"] = fmt(checks["teacher_forced_loss"])
        book[f"{key}_prefix"] = fmt(checks["prefix_loss"])
        leak_value = checks["future_leak"]
        book[f"{key}_leak"] = "0" if leak_value == 0 else fmt(leak_value)
    nc = runs["no_causal"]["records"]
    book["nc_train"] = fmt(_tail_mean(nc))
    book["nc_val"] = fmt(_vals(nc)[-1]["val_loss"])
    # 漏れを使い始める前後の検証の損失
    for step in (300, 400):
        (hit,) = [r for r in _vals(nc) if r["step"] == step]
        book[f"nc_val_{step}"] = fmt(hit["val_loss"])
    book["nc_sample"] = (
        runs["no_causal"]["sample"].replace("\n", " ").strip()
    )
    lr1 = runs["lr_1"]["records"]
    book["lr1_max_loss"] = fmt(_max(lr1, "train_loss"), 0)
    book["lr1_max_grad"] = fmt(_max(lr1, "grad_norm"), 0)
    lr003 = runs["lr_0.03"]["records"]
    book["lr003_final"] = fmt(_tail_mean(lr003))
    # 始めの足踏み: 21〜100 ステップの平均
    plateau = [r["train_loss"] for r in lr003 if 20 < r["step"] <= 100]
    book["lr003_plateau"] = fmt(sum(plateau) / len(plateau))
    # 正常な学習の、同じ 200 ステップ目までの最後の 20 ステップの平均
    book["base_at_200"] = fmt(_tail_mean(rec[:200]))
    book["lr003_fixed_final"] = fmt(
        _tail_mean(runs["lr_0.03_fixed"]["records"])
    )
    book["lr1_fixed_max_loss"] = fmt(
        _max(runs["lr_1_fixed"]["records"], "train_loss"), 0
    )
    of = runs["overfit"]["records"]
    best = min(_vals(of), key=lambda r: r["val_loss"])
    book["of_train"] = fmt(_tail_mean(of))
    book["of_best_step"] = str(best["step"])
    book["of_best_val"] = fmt(best["val_loss"])
    book["of_val"] = fmt(_vals(of)[-1]["val_loss"])
    if "overfit_dropout" in runs:
        ofd = _vals(runs["overfit_dropout"]["records"])
        book["ofd_val"] = fmt(ofd[-1]["val_loss"])
        book["ofd_best_val"] = fmt(min(r["val_loss"] for r in ofd))
        book["ofd_train"] = fmt(
            _tail_mean(runs["overfit_dropout"]["records"])
        )
    pad_result = extra["padding"]
    masked = pad_result["masked"]["accuracy"]
    unmasked = pad_result["unmasked"]["accuracy"]
    book["pad_masked_0"] = _pct(masked["0"])
    book["pad_masked_16"] = _pct(masked["16"])
    for n in ("0", "4", "16"):
        book[f"pad_unmasked_{n}"] = _pct(unmasked[n])
    return book


if __name__ == "__main__":
    main()
