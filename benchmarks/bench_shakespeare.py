"""tinyshakespeare で文字単位の GPT を CPU で学習し、検証損失を測る。

nanoGPT の shakespeare_char を CPU で試す例（4 層・4 ヘッド・128 次元・
ブロック長 64・バッチ 12・2000 反復・dropout 0）と同じ大きさと学習の
設定（lm_experiment.TEXT_LM_CONFIG）で学習する。よく知られた公開結果
では、この設定の検証損失は約 1.88。学習率は 1e-3 から 1e-4 への
コサイン減衰（ウォームアップ 100）、AdamW の beta2 は 0.99、勾配の
クリップは 1.0、重み減衰は 0.1。データの末尾 10% を検証に使い、
検証損失は 20 バッチの平均（nanoGPT の eval_iters=20 と同じ）。

    .venv/bin/python benchmarks/bench_shakespeare.py

データ `../shared/data/tinyshakespeare/input.txt`（リポジトリの
ルートの親）が無ければ、何もせずに終了コード 0 で終わる。
結果は `benchmarks/results/shakespeare.json` に書く。
"""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, replace
from pathlib import Path

import torch
from _common import environment, write_json

from easy_transformer.lm_experiment import (
    TEXT_LM_CONFIG,
    TEXT_SAMPLING,
    train_text_lm,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
RESULTS = Path(__file__).resolve().parent / "results" / "shakespeare.json"
REFERENCE_VAL_LOSS = 1.88  # nanoGPT の README にある CPU の例の結果


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not DATA.is_file():
        print(f"{DATA} が無いので飛ばします。")
        return
    torch.set_num_threads(args.threads)

    load_before = os.getloadavg()
    result = train_text_lm(
        DATA,
        tokenizer="char",
        config=TEXT_LM_CONFIG,
        seed=args.seed,
        device="cpu",
        sampling=replace(TEXT_SAMPLING, max_new_tokens=300),
    )
    record = result.to_dict()
    record.update(
        description="tinyshakespeare の文字単位 GPT（nanoGPT の "
        "shakespeare_char の CPU の例と同じ大きさ）",
        reference_val_loss=REFERENCE_VAL_LOSS,
        train_config=asdict(TEXT_LM_CONFIG),
        load_average_before=load_before,
        load_average_after=os.getloadavg(),
        environment=environment(),
    )
    write_json(RESULTS, record)
    print(
        f"検証損失 {result.val_loss:.4f}（参考 {REFERENCE_VAL_LOSS}）、"
        f"学習 {result.train_seconds:.1f} 秒（CPU {result.cpu_seconds:.1f}"
        f" 秒）、{result.tokens_per_sec:.0f} tokens/s"
    )
    print(result.samples[0])


if __name__ == "__main__":
    main()
