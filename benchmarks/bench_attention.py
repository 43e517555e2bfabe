"""GPT の学習ステップの速さを、nn.TransformerEncoder で作った同じ形と比べる。

easy_transformer の GPT（高速経路の注意 F.scaled_dot_product_attention）と、
同じ層数・次元・ヘッド数の nn.TransformerEncoder（因果マスク、
norm_first=True、GELU の tanh 近似）に同じ埋め込みと出力層を付けたモデル
（`_common.TorchGPT`）で、学習の 1 ステップ（forward + backward +
AdamW）にかかる時間を測る。

時間を測る前に、GPT の重みを相手に写し、ロジットが一致することと、
同じバッチで学習した損失の列が一致することを確かめる（同じ計算どうしの
比較であることの確認）。そのうえで 2 つを交互に測り、回ごとの時間の比
（相手 / GPT。1 より大きければ GPT が速い）の中央値と範囲を出す。
目標は GPT の速さが比較対象の 0.9 倍以上。

    .venv/bin/python benchmarks/bench_attention.py [--threads 1]

結果は `benchmarks/results/attention.json` に書く。
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import torch
from _common import (
    RESULTS,
    Timings,
    add_threads_argument,
    alternate,
    check_close,
    copy_gpt_weights,
    describe_ratio,
    environment,
    set_threads,
    torch_gpt_like,
    training_step,
    write_json,
)
from torch import Tensor, nn

from easy_transformer.gpt import GPT, GPTConfig

OUT = RESULTS / "attention.json"
NAMES = ("easy_transformer.GPT", "nn.TransformerEncoder")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    add_threads_argument(parser)
    return parser.parse_args(argv)


def make_models(
    n_steps: int, batch: int
) -> tuple[GPTConfig, GPT, nn.Module, list[tuple[Tensor, Tensor]]]:
    """GPT と、重みを写した相手、学習に使うバッチの列を作る。"""
    config = GPTConfig(
        vocab_size=512,
        block_size=128,
        n_layers=4,
        n_heads=4,
        d_model=128,
        dropout=0.0,
    )
    torch.manual_seed(0)
    ours = GPT(config)
    ref = torch_gpt_like(ours)
    copy_gpt_weights(ours, ref)
    data = torch.randint(
        0,
        config.vocab_size,
        (n_steps, batch, config.block_size + 1),
    )
    batches = [(b[:, :-1], b[:, 1:]) for b in data]
    return config, ours, ref, batches


def check_and_make_steps(
    ours: GPT, ref: nn.Module, batches: list[tuple[Tensor, Tensor]]
) -> tuple[list[dict[str, Any]], dict[str, Callable[[], float]]]:
    """同じ計算であることを確かめ、(一致の記録, 測る学習ステップ) を返す。"""
    x = batches[0][0]
    checks = [
        check_close("ロジット（学習前）", ref.eval()(x), ours.eval()(x))
    ]
    steps = {
        NAMES[0]: training_step(ours, batches),
        NAMES[1]: training_step(ref, batches),
    }
    # 同じ重み・同じバッチ・同じ AdamW なら、学習した後の損失も同じ
    losses = {name: step() for name, step in steps.items()}
    checks.append(
        check_close(
            f"{len(batches)} ステップ学習した後の損失",
            torch.tensor(losses[NAMES[1]]),
            torch.tensor(losses[NAMES[0]]),
            rtol=1e-4,
            atol=1e-4,
        )
    )
    return checks, steps


def build_result(
    config: GPTConfig,
    args: argparse.Namespace,
    checks: list[dict[str, Any]],
    timings: Timings,
) -> dict[str, Any]:
    """計測した時間から、書き出す JSON を組み立てる。"""
    ratio = {
        kind: timings.ratio(NAMES[1], NAMES[0], kind)
        for kind in ["cpu", "wall"]
    }
    ms_per_step = {
        name: {
            kind: 1000 * timings.median(name, kind) / args.steps
            for kind in ["cpu", "wall"]
        }
        for name in NAMES
    }
    return {
        "description": (
            "学習 1 ステップの速さの比"
            "（nn.TransformerEncoder の時間 / easy_transformer.GPT の時間）"
        ),
        "method": "交互に測り、回ごとの CPU 時間の比の中央値と範囲",
        "config": asdict(config)
        | {"batch": args.batch, "steps_per_round": args.steps},
        "checks": checks,
        "ms_per_step_median": ms_per_step,
        "speed_ratio": ratio,
        "timings": timings.to_dict(),
        "target": 0.9,
        "environment": environment(),
        "book": {
            "speed_ratio": describe_ratio(ratio["cpu"]),
        },
    }


def print_summary(result: dict[str, Any]) -> None:
    print(f"{'':24s} {'CPU 時間':>10s} {'経過時間':>10s}（ms/ステップ）")
    for name, ms in result["ms_per_step_median"].items():
        print(f"{name:24s} {ms['cpu']:10.1f} {ms['wall']:10.1f}")
    print(
        "速さの比 GPT / nn.TransformerEncoder（CPU 時間）: "
        f"{describe_ratio(result['speed_ratio']['cpu'])}（目標 0.9 以上）"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    set_threads(args.threads)
    config, ours, ref, batches = make_models(args.steps, args.batch)
    checks, steps = check_and_make_steps(ours, ref, batches)
    timings = alternate(steps, args.rounds)
    result = build_result(config, args, checks, timings)
    write_json(OUT, result)
    print_summary(result)


if __name__ == "__main__":
    main()
