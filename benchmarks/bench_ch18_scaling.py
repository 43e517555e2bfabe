"""第18章: モデルの大きさを変えた、小さなスケーリングの実験（CPU）。

tinyshakespeare を文字単位で、大きさの違う 5 つの GPT に同じ
ステップ数・同じバッチ（同じトークン数）だけ学習させ、検証の損失の
曲線と、最後の損失と（埋め込みを除く）パラメータ数の関係を記録する。
計算量は Kaplan et al. (2020) の近似 C ≈ 6ND（N は埋め込みを除く
パラメータ数、D は学習したトークン数）で数える。最後の損失を
log L = log a − α log N の直線に当てはめた α も記録する（点が 5 つ
しかなく、範囲も狭いので、目安にとどまる）。

    .venv/bin/python benchmarks/bench_ch18_scaling.py

結果は `benchmarks/results/ch18_scaling.json` に書く。
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from _common import environment, write_json

from easy_transformer.data import data_path
from easy_transformer.lm_experiment import (
    TEXT_LM_CONFIG,
    SamplingConfig,
    train_text_lm,
)

RESULTS = Path(__file__).resolve().parent / "results" / "ch18_scaling.json"

# (層数, d_model, ヘッド数)
SIZES = ((1, 16, 2), (2, 32, 2), (2, 64, 4), (3, 96, 4), (4, 128, 4))
BASE = replace(
    TEXT_LM_CONFIG,
    block_size=64,
    batch_size=16,
    max_steps=800,
    warmup_steps=80,
    eval_interval=100,
    eval_batches=10,
)


def non_embedding_params(model: torch.nn.Module) -> int:
    """埋め込み（トークンと位置）を除くパラメータ数（Kaplan et al. の N）。"""
    return sum(
        p.numel()
        for name, p in model.named_parameters()
        if not name.startswith(("tok_emb.", "pos_emb."))
    )


def fit_power_law(
    ns: list[int], losses: list[float]
) -> tuple[float, float]:
    """log L = log a − α log N を最小二乗で当てはめ、(a, α) を返す。"""
    xs = [math.log(n) for n in ns]
    ys = [math.log(v) for v in losses]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope /= sum((x - mx) ** 2 for x in xs)
    return math.exp(my - slope * mx), -slope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    path = data_path("tinyshakespeare/input.txt")
    tokens_per_step = BASE.batch_size * BASE.block_size

    runs: list[dict[str, Any]] = []
    for n_layers, d_model, n_heads in SIZES:
        cfg = replace(
            BASE, n_layers=n_layers, d_model=d_model, n_heads=n_heads
        )
        result = train_text_lm(
            path,
            config=cfg,
            device="cpu",
            progress=False,
            sampling=SamplingConfig(n_samples=1, max_new_tokens=0),
        )
        n = non_embedding_params(result.model)
        curve = [
            {
                "step": r["step"],
                "tokens": r["step"] * tokens_per_step,
                "flops": 6 * n * r["step"] * tokens_per_step,
                "val_loss": r["val_loss"],
            }
            for r in result.history
            if "val_loss" in r
        ]
        run = {
            "n_layers": n_layers,
            "d_model": d_model,
            "n_heads": n_heads,
            "n_params": result.n_params,
            "n_non_embedding": n,
            "final_val_loss": result.val_loss,
            "train_seconds": result.train_seconds,
            "curve": curve,
        }
        print({k: v for k, v in run.items() if k != "curve"}, flush=True)
        runs.append(run)

    ns = [r["n_non_embedding"] for r in runs]
    losses = [r["final_val_loss"] for r in runs]
    a, alpha = fit_power_law(ns, losses)
    tokens = BASE.max_steps * tokens_per_step
    book = {
        "steps": f"{BASE.max_steps:,}",
        "tokens": f"{tokens:,}",
        "alpha": f"{alpha:.3f}",
        "n_min": f"{min(ns):,}",
        "n_max": f"{max(ns):,}",
        "loss_min_model": f"{losses[0]:.2f}",
        "loss_max_model": f"{losses[-1]:.2f}",
        "seconds": f"{sum(r['train_seconds'] for r in runs):.0f}",
    }
    for r in runs:
        key = f"L{r['n_layers']}_d{r['d_model']}"
        book[f"n_{key}"] = f"{r['n_non_embedding']:,}"
        book[f"loss_{key}"] = f"{r['final_val_loss']:.3f}"
    write_json(
        RESULTS,
        {
            "description": "tinyshakespeare（文字単位）で大きさの違う GPT"
            "を同じトークン数だけ学習した検証の損失",
            "config": asdict(BASE) | {"sizes": SIZES},
            "threads": args.threads,
            "runs": runs,
            "fit": {"a": a, "alpha": alpha},
            "book": book,
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "environment": environment(),
        },
    )
    print(book)


if __name__ == "__main__":
    main()
