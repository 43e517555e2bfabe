"""KV キャッシュで生成がどれだけ速くなるかを測る（CPU）。

同じ GPT・同じプロンプトで、貪欲法（毎回いちばん確率の高いトークンを
選ぶ。乱数を使わない）で 500 トークンを生成する。まずキャッシュあり／
なしのトークン列が完全に同じことを確かめ、そのうえで 2 つを交互に
何回か測り（回ごとに順番を入れ替える）、回ごとの CPU 時間の比
（キャッシュなし / キャッシュあり）の中央値と範囲を出す。目標は
キャッシュなしの 5 倍以上の速さ。生成の設定は JSON の "generation" に
残し、付録の表のラベルはそこから作る。

    .venv/bin/python benchmarks/bench_kv_cache.py [--threads 1]

結果は `benchmarks/results/kv_cache.json` に書く。
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

import torch
from _common import (
    RESULTS,
    add_threads_argument,
    alternate,
    check_equal,
    describe_ratio,
    environment,
    set_threads,
    write_json,
)

from easy_transformer.gpt import GPT, GPTConfig

OUT = RESULTS / "kv_cache.json"
PROMPT = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    add_threads_argument(parser)
    args = parser.parse_args()
    set_threads(args.threads)

    config = GPTConfig(
        vocab_size=1000,
        block_size=512,
        n_layers=4,
        n_heads=4,
        d_model=128,
    )
    torch.manual_seed(0)
    model = GPT(config).eval()
    prompt = torch.randint(0, config.vocab_size, (1, PROMPT))
    generation = {
        "strategy": "greedy",
        "do_sample": False,
        "prompt_tokens": PROMPT,
        "new_tokens": args.tokens,
    }
    outputs: dict[str, torch.Tensor] = {}

    def run(use_cache: bool) -> None:
        out = model.generate(
            prompt, args.tokens, do_sample=False, use_cache=use_cache
        )
        outputs["cache" if use_cache else "no_cache"] = out

    runs = {"cache": lambda: run(True), "no_cache": lambda: run(False)}
    for fn in runs.values():
        fn()
    checks = [
        check_equal(
            "キャッシュあり／なしの生成したトークン列",
            outputs["cache"],
            outputs["no_cache"],
        )
    ]
    timings = alternate(runs, args.rounds, warmup=0)
    # 測った回の出力も、毎回同じであることを確かめる
    checks.append(
        check_equal(
            "計測の最後の回のトークン列",
            outputs["cache"],
            outputs["no_cache"],
        )
    )
    speedup = {
        kind: timings.ratio("no_cache", "cache", kind)
        for kind in ["cpu", "wall"]
    }
    tokens_per_s = {
        name: {
            kind: args.tokens / timings.median(name, kind)
            for kind in ["cpu", "wall"]
        }
        for name in runs
    }
    result = {
        "description": "KV キャッシュあり／なしの生成の速さ",
        "method": "交互に測り、回ごとの CPU 時間の比の中央値と範囲",
        "config": asdict(config),
        "generation": generation,
        "checks": checks,
        "identical_output": True,
        "tokens_per_s_median": tokens_per_s,
        "speedup": speedup,
        "timings": timings.to_dict(),
        "target": 5.0,
        "environment": environment(),
        "book": {
            "speedup": describe_ratio(speedup["cpu"], digits=1),
            "speedup_median": f"{speedup['cpu']['median']:.1f} 倍",
            "new_tokens": f"{args.tokens}",
        },
    }
    write_json(OUT, result)

    print(f"{'':12s} {'CPU 時間':>10s} {'経過時間':>10s}（tokens/s）")
    for name, tps in tokens_per_s.items():
        print(f"{name:12s} {tps['cpu']:10.1f} {tps['wall']:10.1f}")
    print(
        "キャッシュありはなしの "
        f"{describe_ratio(speedup['cpu'], digits=1)}（CPU 時間）。"
        "目標 5 倍以上。出力はトークン単位で同じ"
    )


if __name__ == "__main__":
    main()
