"""GPT にミニ言語のプログラムを書かせ、パースできる割合を測る（CPU）。

lm_experiment.MINILANG_LM_CONFIG（本格的な設定）で、確率文法で作った
プログラム集（1 行 1 プログラム）から文字単位の GPT を学習する。
学習の後、改行 1 文字から MINILANG_SAMPLING の設定（温度 1.0、
top-k・top-p なし。つまりモデルの分布からそのまま引く）で 64 本を
生成し（1 本 127 トークン）、最後の改行より前の完成した行をパーサに
かける。目標は受理率 90% 以上。評価まで成功した割合（未定義の変数や
0 除算で止まらない）も記録する。比べるために、同じモデルで温度 0.8
と 0.5 でも受理率を測る。

    .venv/bin/python benchmarks/bench_minilang_lm.py

結果は `benchmarks/results/minilang_lm.json` に書く。
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

import torch
from _common import environment, write_json

from easy_transformer.lm_experiment import (
    MINILANG_SAMPLING,
    generate_text,
    train_minilang_lm,
)
from easy_transformer.tasks import acceptance_rate, split_programs

RESULTS = Path(__file__).resolve().parent / "results" / "minilang_lm.json"
TARGET = 0.9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    load_before = os.getloadavg()
    result = train_minilang_lm(seed=args.seed, device="cpu")
    load_after = os.getloadavg()

    # 同じモデルで、温度だけを変えて測り直す
    other_temperatures = {}
    for temperature in (0.8, 0.5):
        smp = replace(MINILANG_SAMPLING, temperature=temperature)
        texts = generate_text(
            result.model,
            result.codec,
            "\n",
            max_new_tokens=min(
                smp.max_new_tokens, result.config.block_size - 1
            ),
            temperature=smp.temperature,
            n_samples=smp.n_samples,
            seed=smp.seed,
        )
        lines = [line for t in texts for line in split_programs(t)]
        other_temperatures[str(temperature)] = {
            "n_programs": len(lines),
            "acceptance_rate": acceptance_rate(lines),
        }

    record = result.to_dict()
    record.update(
        description="GPT が生成したミニ言語のプログラムのうち、パーサが"
        "受理した割合",
        target=TARGET,
        passed=result.acceptance_rate is not None
        and result.acceptance_rate >= TARGET,
        other_temperatures=other_temperatures,
        load_average_before=load_before,
        load_average_after=load_after,
        environment=environment(),
    )
    write_json(RESULTS, record)
    print(
        f"受理率 {result.acceptance_rate:.3f}（{result.n_generated_programs}"
        f" 行、温度 {MINILANG_SAMPLING.temperature}）、評価まで成功 "
        f"{result.run_rate}、学習データに無いもの {result.novel_rate}、学習 {result.train_seconds:.1f} 秒"
        f"（CPU {result.cpu_seconds:.1f} 秒）、他の温度 {other_temperatures}"
    )
    for line in result.samples[:10]:
        print("  ", line)


if __name__ == "__main__":
    main()
