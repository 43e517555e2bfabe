"""第14章の計測: QKV の束ね方、F.scaled_dot_product_attention、注意のメモリ。

1. QKV の射影: 3 つの nn.Linear と、(d, 3d) の 1 つの nn.Linear の
   forward + backward の時間の比。
2. 注意の計算: 自前の式（easy_transformer の scaled_dot_product_attention）
   と F.scaled_dot_product_attention の forward + backward の時間の比。
3. 注意のメモリ: 系列長 n を変えて、素朴な注意・タイル版・
   F.scaled_dot_product_attention が 1 回の計算で余計に使う最大常駐
   メモリ（listings/ch14/03_peak_memory.py。子プロセスで測る）。
4. タイル版と素朴な版の時間の比（推論、勾配なし。系列長 2048 と 256）。

1・2・4 は、ほかの速さの比較（bench_attention.py など）と同じ方法で測る。
時間を測る前に 2 つの出力が一致することを確かめ（一致しなければ止まる）、
`_common.alternate` で交互に測って（回ごとに順番を入れ替える）、回ごとの
CPU 時間（time.process_time）の比の中央値と範囲（最小・最大）を記録する。
スレッド数は `--threads`（既定 1）でそろえ、JSON に記録する。

    .venv/bin/python benchmarks/bench_ch14_attention.py [--threads 1]

結果は benchmarks/results/ch14_attention.json に書く（数分かかる）。
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from _common import (
    RESULTS,
    ROOT,
    add_threads_argument,
    alternate,
    check_close,
    environment,
    set_threads,
    write_json,
)

sys.path.insert(0, str(ROOT))

OUT = RESULTS / "ch14_attention.json"
fused_qkv = importlib.import_module("listings.ch14.01_fused_qkv")
tiled = importlib.import_module("listings.ch14.02_tiled_attention")
peak = importlib.import_module("listings.ch14.03_peak_memory")

ROUNDS = 15


def alternate_ratio(
    slow: Callable[[], Any],
    fast: Callable[[], Any],
    reps: int,
    rounds: int = ROUNDS,
) -> dict[str, Any]:
    """slow と fast を `_common.alternate` で交互に測り、比 slow / fast を返す。

    1 回の計測では同じ関数を reps 回続けて呼ぶ（小さな入力の 1 回は短すぎて
    時計で測りにくいため）。2 つとも同じ reps なので、比は 1 回あたりの
    時間の比と同じ。最初の 1 回だけの準備は、それぞれ 1 回呼んで除く。
    """

    def repeat(fn: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(reps):
                fn()

        return run

    slow(), fast()  # 最初の 1 回だけの準備を除く
    timings = alternate(
        {"slow": repeat(slow), "fast": repeat(fast)}, rounds, warmup=0
    )
    return timings.ratio("slow", "fast") | {"reps": reps}


def bench_qkv(
    batch: int, seq: int, d: int, rounds: int = ROUNDS
) -> dict[str, Any]:
    torch.manual_seed(0)
    x = torch.randn(batch, seq, d)
    ws = [torch.randn(d, d, requires_grad=True) for _ in range(3)]
    w_qkv = torch.cat([w.detach() for w in ws]).requires_grad_()
    grads = [torch.randn(batch, seq, d) for _ in range(3)]

    def separate() -> None:
        outs = [F.linear(x, w) for w in ws]
        torch.autograd.backward(outs, grads)

    def fused() -> None:
        outs = F.linear(x, w_qkv).split(d, dim=-1)
        torch.autograd.backward(outs, grads)

    # 同じ関数であること（重みを写せば出力が一致する）
    check = check_close(
        f"QKV の射影（3 つの層と 1 つの層、(batch, seq, d_model) = {(batch, seq, d)}）",
        F.linear(x, w_qkv),
        torch.cat([F.linear(x, w) for w in ws], dim=-1),
    )
    reps = 20 if batch * seq > 64 else 200
    result = alternate_ratio(separate, fused, reps=reps, rounds=rounds)
    result["check"] = check
    result["shape"] = {"batch": batch, "seq": seq, "d_model": d}
    return result


def bench_sdpa(
    batch: int, seq: int, d: int, heads: int, rounds: int = ROUNDS
) -> dict[str, Any]:
    torch.manual_seed(0)
    attn = fused_qkv.FusedSelfAttention(d, heads, block_size=seq)
    x = torch.randn(batch, seq, d)
    grad = torch.randn(batch, seq, d)

    def step(use_sdpa: bool) -> Callable[[], None]:
        def run() -> None:
            attn.use_sdpa = use_sdpa
            attn.zero_grad(set_to_none=True)
            attn(x).backward(grad)

        return run

    # 自前の式と F.scaled_dot_product_attention の出力が一致すること
    with torch.no_grad():
        attn.use_sdpa = False
        mine = attn(x)
        attn.use_sdpa = True
        check = check_close(
            "注意の出力（F.scaled_dot_product_attention と自前の式）",
            attn(x),
            mine,
        )
    result = alternate_ratio(step(False), step(True), reps=5, rounds=rounds)
    result["check"] = check
    result["shape"] = {
        "batch": batch,
        "seq": seq,
        "d_model": d,
        "heads": heads,
    }
    return result


def bench_memory(
    sizes: dict[str, list[int]], batch_heads: int, d: int, block: int
) -> dict[str, Any]:
    mib: dict[str, dict[str, float]] = {}
    for method, ns in sizes.items():
        mib[method] = {}
        for n in ns:
            value = peak.peak_extra_mib(method, n, batch_heads, d, block)
            mib[method][str(n)] = value
            print(f"  メモリ {method:5s} n={n:6d}: {value:8.1f} MiB")
    # 増え方の指数: 最も長い 2 つの系列長の間の両対数の傾き
    slopes = {}
    for method, values in mib.items():
        (n1, m1), (n2, m2) = list(values.items())[-2:]
        slopes[method] = math.log(m2 / m1) / math.log(int(n2) / int(n1))
    return {
        "peak_extra_mib": mib,
        "slope_last_doubling": slopes,
        "batch_heads": batch_heads,
        "d": d,
        "block": block,
    }


def bench_tiled_time(
    n: int, batch_heads: int, d: int, rounds: int = 9
) -> dict[str, Any]:
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, batch_heads, n, d) for _ in range(3))

    def naive() -> None:
        with torch.no_grad():
            tiled.naive_attention(q, k, v)

    def tile() -> None:
        with torch.no_grad():
            tiled.tiled_attention(q, k, v, 128)

    with torch.no_grad():
        check = check_close(
            f"注意の出力（タイル版と素朴な版、n={n}）",
            tiled.tiled_attention(q, k, v, 128),
            tiled.naive_attention(q, k, v),
        )
    # 比は「タイル版の時間 / 素朴な版の時間」（1 より大きいほど遅い）
    reps = 2 if n >= 1024 else 20
    result = alternate_ratio(tile, naive, reps=reps, rounds=rounds)
    result["check"] = check
    result["n"] = n
    return result


def fmt_ratio(r: dict[str, Any]) -> str:
    return f"{r['median']:.2f} 倍（範囲 {r['min']:.2f}〜{r['max']:.2f}）"


def measure() -> dict[str, dict[str, Any]]:
    """本文に載せる大きさで、時間の比とメモリを測る。"""
    print("QKV の射影 …")
    qkv = bench_qkv(batch=8, seq=128, d=256)
    print("  ", fmt_ratio(qkv))
    # 1 トークンずつ生成するときのような小さな入力
    qkv_small = bench_qkv(batch=1, seq=1, d=256)
    print("  ", fmt_ratio(qkv_small))
    print("F.scaled_dot_product_attention …")
    sdpa = bench_sdpa(batch=8, seq=256, d=256, heads=4)
    print("  ", fmt_ratio(sdpa))
    print("タイル版の時間 …")
    tiled_time = bench_tiled_time(n=2048, batch_heads=4, d=64)
    print("  ", fmt_ratio(tiled_time))
    tiled_time_short = bench_tiled_time(n=256, batch_heads=4, d=64)
    print("  ", fmt_ratio(tiled_time_short))
    print("メモリ …")
    memory = bench_memory(
        {
            "naive": [1024, 2048, 4096, 8192],
            "tiled": [1024, 2048, 4096, 8192, 16384],
            "sdpa": [1024, 2048, 4096, 8192, 16384],
        },
        batch_heads=4,
        d=64,
        block=128,
    )
    return {
        "qkv": qkv,
        "qkv_small": qkv_small,
        "sdpa": sdpa,
        "tiled_time": tiled_time,
        "tiled_time_short": tiled_time_short,
        "memory": memory,
    }


def build_book(m: dict[str, dict[str, Any]]) -> dict[str, str]:
    """本文の {{ch14_attention_…}} に入れる文字列。"""
    mib = m["memory"]["peak_extra_mib"]
    slopes = m["memory"]["slope_last_doubling"]
    return {
        "qkv_speedup": fmt_ratio(m["qkv"]),
        "qkv_small_speedup": fmt_ratio(m["qkv_small"]),
        "qkv_rounds": str(ROUNDS),
        "sdpa_speedup": fmt_ratio(m["sdpa"]),
        "tiled_time_2048": fmt_ratio(m["tiled_time"]),
        "tiled_time_256": fmt_ratio(m["tiled_time_short"]),
        "naive_slope": f"{slopes['naive']:.2f}",
        "tiled_slope": f"{slopes['tiled']:.2f}",
        "sdpa_slope": f"{slopes['sdpa']:.2f}",
        "naive_mib_4096": f"{mib['naive']['4096']:.0f} MiB",
        "naive_mib_8192": f"{mib['naive']['8192']:.0f} MiB",
        "tiled_mib_8192": f"{mib['tiled']['8192']:.1f} MiB",
        "tiled_mib_1024": f"{mib['tiled']['1024']:.1f} MiB",
        "sdpa_mib_8192": f"{mib['sdpa']['8192']:.1f} MiB",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    m = measure()
    book = build_book(m)
    checks = [
        m[name]["check"]
        for name in [
            "qkv",
            "qkv_small",
            "sdpa",
            "tiled_time",
            "tiled_time_short",
        ]
    ]
    write_json(
        OUT,
        {
            "description": "第14章: QKV の束ね方・SDPA・注意のメモリ",
            "method": "交互に測り、回ごとの CPU 時間の比の中央値と範囲"
            "（メモリは子プロセスの最大常駐メモリ）",
            "checks": checks,
            "environment": environment(),
            **m,
            "book": book,
        },
    )
    for key, value in book.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
