"""第2章の torch.compile（TorchInductor）の例の時間を測る（CPU）。

`listings/ch02/05_fusion.py` の `gelu_by_hand`（要素ごとの演算を 9 つ
並べた GELU の近似）を、400 万要素の float32 のテンソルで測る。

- 最初の呼び出し（グラフの取り出し、コードの生成、C++ のコンパイルを
  含む）の時間を、コンパイルのキャッシュが空の状態と、同じキャッシュが
  残っている状態（別のプロセス）で測る。
- 融合した関数の出力が eager の出力と一致することを確かめてから、
  eager と融合後を交互に測り（回ごとに順番を入れ替える）、回ごとの
  CPU 時間の比（eager / 融合後）の中央値と範囲を出す。

キャッシュの状態を分けるため、測定はそれぞれ新しいプロセスで行い、
TORCHINDUCTOR_CACHE_DIR に一時フォルダを指定する。

    .venv/bin/python benchmarks/bench_compile.py [--threads 1]

結果は `benchmarks/results/compile.json` に書く。第2章の本文は、
その "book" の項目を `{{compile_...}}` の置換で引く。
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import (
    RESULTS,
    ROOT,
    add_threads_argument,
    alternate,
    check_close,
    describe_ratio,
    environment,
    set_threads,
    write_json,
)

OUT = RESULTS / "compile.json"
LISTING = ROOT / "listings" / "ch02" / "05_fusion.py"
N_ELEMENTS = 4_000_000
CALLS_PER_ROUND = 5


def load_listing() -> Any:
    spec = importlib.util.spec_from_file_location("fusion", LISTING)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def child(rounds: int) -> dict[str, Any]:
    """1 つのプロセスの中で、最初の呼び出しと、交互の計測を行う。"""
    fusion = load_listing()
    torch.manual_seed(0)
    x = torch.randn(N_ELEMENTS)
    with torch.no_grad():
        compiled = torch.compile(fusion.gelu_by_hand)
        start = time.perf_counter()
        compiled(x)
        first = time.perf_counter() - start
        check = check_close(
            "融合した関数と eager の出力",
            compiled(x),
            fusion.gelu_by_hand(x),
            rtol=0.0,
            atol=1e-6,
        )

        def repeat(fn: Any) -> Any:
            def run() -> None:
                for _ in range(CALLS_PER_ROUND):
                    fn(x)

            return run

        timings = alternate(
            {
                "eager": repeat(fusion.gelu_by_hand),
                "fused": repeat(compiled),
            },
            rounds,
        )
    per_call = {
        name: [t / CALLS_PER_ROUND for t in timings.cpu[name]]
        for name in ["eager", "fused"]
    }
    return {
        "first_call_seconds": first,
        "check": check,
        "ratio_eager_over_fused": timings.ratio("eager", "fused"),
        "ms_per_call": {
            name: {
                "median": 1e3 * timings.median(name) / CALLS_PER_ROUND,
                "min": 1e3 * min(v),
                "max": 1e3 * max(v),
            }
            for name, v in per_call.items()
        },
    }


def run_child(cache: Path, rounds: int, threads: int) -> dict[str, Any]:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache)}
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--rounds",
            str(rounds),
            "--threads",
            str(threads),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        raise SystemExit(
            "torch.compile の計測に失敗しました（上のエラーを参照）。"
        )
    result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--child", action="store_true", help=argparse.SUPPRESS
    )
    add_threads_argument(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    if args.child:
        print(json.dumps(child(args.rounds)))
        return

    with tempfile.TemporaryDirectory() as folder:
        cold = run_child(Path(folder), args.rounds, args.threads)
        warm = run_child(Path(folder), args.rounds, args.threads)
    cold["check"]["what"] += "（キャッシュが空）"
    warm["check"]["what"] += "（キャッシュあり）"
    ms = cold["ms_per_call"]
    saved_ms = ms["eager"]["median"] - ms["fused"]["median"]
    break_even = cold["first_call_seconds"] * 1e3 / saved_ms
    ratio = cold["ratio_eager_over_fused"]
    result = {
        "description": "torch.compile（Inductor）で要素ごとの演算を融合した"
        "ときの速さと、コンパイルにかかる時間（第2章）",
        "method": "eager と融合後を交互に測り、回ごとの CPU 時間の比の"
        "中央値と範囲。最初の呼び出しは経過時間",
        "config": {
            "function": "listings/ch02/05_fusion.py:gelu_by_hand",
            "elements": N_ELEMENTS,
            "dtype": "float32",
            "calls_per_round": CALLS_PER_ROUND,
            "rounds": args.rounds,
        },
        "checks": [cold["check"], warm["check"]],
        "cold_cache": cold,
        "warm_cache": warm,
        "break_even_calls": break_even,
        "environment": environment(),
        "book": {
            "first_call": f"{cold['first_call_seconds']:.1f} 秒",
            "first_call_warm": f"{warm['first_call_seconds']:.1f} 秒",
            "eager_ms": f"{ms['eager']['median']:.1f} ms",
            "eager_ms_range": f"{ms['eager']['min']:.1f}〜"
            f"{ms['eager']['max']:.1f} ms",
            "fused_ms": f"{ms['fused']['median']:.1f} ms",
            "speedup": describe_ratio(ratio, digits=1),
            "break_even": f"{break_even:,.0f} 回",
        },
    }
    write_json(OUT, result)
    for key, value in result["book"].items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
