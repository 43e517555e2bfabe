"""KV キャッシュで生成がどれだけ速くなるかを測る（CPU）。

同じ GPT・同じプロンプト・同じ乱数の種で、500 トークンをサンプリングで
生成し、KV キャッシュあり／なしの tokens/s と比を出す。2 つの出力が
トークン単位で同じことも確かめる。目標はキャッシュなしの 5 倍以上。

    .venv/bin/python benchmarks/bench_kv_cache.py

結果は `benchmarks/results/kv_cache.json` に書く。
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
from _common import write_json
from torch import Tensor

from easy_transformer.gpt import GPT, GPTConfig

RESULTS = Path(__file__).resolve().parent / "results" / "kv_cache.json"


def generate(
    model: GPT, prompt: Tensor, n: int, use_cache: bool
) -> tuple[Tensor, float, float]:
    """(生成した列, CPU 時間, 経過時間) を返す。乱数の種は毎回同じ。"""
    generator = torch.Generator().manual_seed(0)
    cpu, wall = time.thread_time(), time.perf_counter()
    out = model.generate(
        prompt,
        n,
        do_sample=True,
        top_k=50,
        use_cache=use_cache,
        generator=generator,
    )
    return out, time.thread_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    # 1 スレッドにして、スレッドの CPU 時間でも測れるようにする
    # （ほかのプロセスとの取り合いで経過時間は揺れる）
    torch.set_num_threads(args.threads)

    config = GPTConfig(
        vocab_size=1000,
        block_size=512,
        n_layers=4,
        n_heads=4,
        d_model=128,
    )
    torch.manual_seed(0)
    model = GPT(config).eval()
    prompt = torch.randint(0, config.vocab_size, (1, 8))
    generate(model, prompt, 5, use_cache=True)  # 初回の準備を測らない

    runs = {
        name: generate(model, prompt, args.tokens, use_cache)
        for name, use_cache in [("cache", True), ("no_cache", False)]
    }
    same = torch.equal(runs["cache"][0], runs["no_cache"][0])
    tokens_per_s = {
        name: {"cpu": args.tokens / cpu, "wall": args.tokens / wall}
        for name, (_, cpu, wall) in runs.items()
    }
    speedup = {
        kind: tokens_per_s["cache"][kind] / tokens_per_s["no_cache"][kind]
        for kind in ["cpu", "wall"]
    }

    result = {
        "description": "KV キャッシュあり／なしの生成の速さ（tokens/s）",
        "config": vars(config) | {"prompt": 8, "new_tokens": args.tokens},
        "tokens_per_s": tokens_per_s,
        "speedup": speedup,
        "identical_output": same,
        "target": 5.0,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS, result)

    print(f"{'':12s} {'CPU 時間':>10s} {'経過時間':>10s}（tokens/s）")
    for name, tps in tokens_per_s.items():
        print(f"{name:12s} {tps['cpu']:10.1f} {tps['wall']:10.1f}")
    print(
        f"キャッシュありはなしの {speedup['cpu']:.1f} 倍（CPU 時間）、"
        f"{speedup['wall']:.1f} 倍（経過時間）。目標 5 倍以上"
    )
    print(f"出力はトークン単位で{'同じ' if same else '違う'}")
    if not same:
        raise SystemExit("KV キャッシュあり／なしで出力が違います")


if __name__ == "__main__":
    main()
