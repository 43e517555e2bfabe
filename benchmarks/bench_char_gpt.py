"""文字単位 GPT の学習の速さを、torch.nn.TransformerEncoder と比べる（CPU）。

本書の GPT（easy_transformer.gpt）と、同じ大きさのモデルを PyTorch の
nn.TransformerEncoder（因果マスク付き、Pre-LN、GELU の tanh 近似）で
組んだもの（`_common.TorchGPT`）を、同じバッチ・同じ AdamW で学習し、
1 秒あたりに学習したトークンの数（tokens/s）と、回ごとの時間の比を出す。
大きさは bench_shakespeare.py と同じ（4 層・4 ヘッド・128 次元・
ブロック長 64・バッチ 12・語彙 65・バイアスなし）。

時間を測る前に、本書の GPT の重みを相手に写し、ロジットと、同じ
バッチで学習した後の損失が一致することを確かめる。そのうえで 2 つを
交互に測り（回ごとに順番を入れ替える）、回ごとの CPU 時間の比
（PyTorch / 本書。1 より大きければ本書が速い）の中央値と範囲をとる。

    .venv/bin/python benchmarks/bench_char_gpt.py [--threads 1]

結果は `benchmarks/results/char_gpt.json` に書く。
"""

from __future__ import annotations

import argparse

import torch
from _common import (
    RESULTS,
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

from easy_transformer.gpt import GPT, GPTConfig

OUT = RESULTS / "char_gpt.json"
VOCAB, BLOCK, BATCH = 65, 64, 12
LAYERS, HEADS, D_MODEL = 4, 4, 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_threads_argument(parser)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    set_threads(args.threads)

    config = GPTConfig(
        vocab_size=VOCAB,
        block_size=BLOCK,
        n_layers=LAYERS,
        n_heads=HEADS,
        d_model=D_MODEL,
        dropout=0.0,
        bias=False,
    )
    torch.manual_seed(0)
    ours = GPT(config)
    ref = torch_gpt_like(ours)
    copy_gpt_weights(ours, ref)
    n_params = {
        "ours": sum(p.numel() for p in ours.parameters()),
        "torch": sum(p.numel() for p in ref.parameters()),
    }
    data = torch.randint(VOCAB, (args.steps, BATCH, BLOCK + 1))
    batches = [(b[:, :-1], b[:, 1:]) for b in data]
    x = batches[0][0]
    checks = [
        check_close("ロジット（学習前）", ref.eval()(x), ours.eval()(x))
    ]
    steps = {
        "ours": training_step(ours, batches),
        "torch": training_step(ref, batches),
    }
    losses = {name: step() for name, step in steps.items()}
    checks.append(
        check_close(
            f"{args.steps} ステップ学習した後の損失",
            torch.tensor(losses["torch"]),
            torch.tensor(losses["ours"]),
            rtol=1e-4,
            atol=1e-4,
        )
    )

    timings = alternate(steps, args.rounds)
    ratio = {
        kind: timings.ratio("torch", "ours", kind)
        for kind in ["cpu", "wall"]
    }
    tokens = args.steps * BATCH * BLOCK
    tokens_per_sec = {
        name: {
            kind: tokens / timings.median(name, kind)
            for kind in ["cpu", "wall"]
        }
        for name in steps
    }
    result = {
        "description": "文字単位 GPT の学習の速さ。本書の GPT と"
        " nn.TransformerEncoder（因果マスク）で組んだ同じ大きさのモデル",
        "method": "交互に測り、回ごとの CPU 時間の比の中央値と範囲",
        "config": {
            "vocab_size": VOCAB,
            "block_size": BLOCK,
            "batch_size": BATCH,
            "n_layers": LAYERS,
            "n_heads": HEADS,
            "d_model": D_MODEL,
            "d_ff": 4 * D_MODEL,
            "dropout": 0.0,
            "bias": False,
            "steps_per_round": args.steps,
            "rounds": args.rounds,
        },
        "n_params": n_params,
        "checks": checks,
        "median_tokens_per_sec": tokens_per_sec,
        "speed_ratio_ours_over_torch": ratio,
        "timings": timings.to_dict(),
        "environment": environment(),
        "book": {"speed_ratio": describe_ratio(ratio["cpu"])},
    }
    write_json(OUT, result)
    print(
        f"本書 {tokens_per_sec['ours']['cpu']:.0f} tokens/s、PyTorch "
        f"{tokens_per_sec['torch']['cpu']:.0f} tokens/s（CPU 時間）、"
        f"速さの比（本書 / PyTorch）{describe_ratio(ratio['cpu'])}"
    )


if __name__ == "__main__":
    main()
