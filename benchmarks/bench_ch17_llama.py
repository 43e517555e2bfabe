"""第17章の計測: ミニ言語を書く GPT の受理率と、GPT-2 形式と Llama 形式の比較。

1. GPT-2 形式（lm_experiment.MINILANG_LM_CONFIG。bench_minilang_lm.py と
   同じ設定と種）でミニ言語のプログラム集を学習し、温度 1.0 で生成した
   行を、字句解析・構文解析・評価のどこで止まったかで数える。
2. 同じ学習の設定で、モデルだけを Llama 形式（RMSNorm、SwiGLU、RoPE、
   GQA、出力層を共有しない、バイアスなし）に変えて学習し、検証の損失と
   受理率を比べる。SwiGLU の幅は GPT-2 の FFN とパラメータ数がそろう
   ように選ぶ。どちらも種 0 の 1 回だけ。
3. GQA で KV キャッシュの大きさがヘッド数の比で減ることを、実際に
   キャッシュに入ったテンソルの要素数で数える。

    .venv/bin/python benchmarks/bench_ch17_llama.py

結果は `benchmarks/results/ch17_llama.json` に書く（1 スレッドで数分）。
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from _common import (
    add_rebook_argument,
    environment,
    rebook,
    set_threads,
    write_json,
)

from easy_transformer import lm_experiment
from easy_transformer.attention import KVCache
from easy_transformer.gpt import GPT, GPTConfig
from easy_transformer.llama import llama_config
from easy_transformer.minilang import (
    EvalError,
    LexError,
    ParseError,
    evaluate,
    parse,
)

RESULTS = Path(__file__).resolve().parent / "results" / "ch17_llama.json"
# GPT-2 の FFN（2 × 64 × 256 の重み）とほぼ同じ数の重み（3 × 64 × 171）
SWIGLU_WIDTH = 171


def classify(line: str) -> str:
    """生成した 1 行が、どの段階で止まったか（または最後まで通ったか）。"""
    try:
        program = parse(line)
    except LexError:
        return "lex_error"
    except ParseError:
        return "parse_error"
    try:
        evaluate(program)
    except EvalError as e:
        return "undefined" if "定義されていません" in str(e) else "div_zero"
    return "runs"


def train(overrides: dict[str, Any] | None, seed: int) -> dict[str, Any]:
    """ミニ言語の GPT を学習し、損失・受理率・生成した行の内訳を返す。"""
    captured: dict[str, list[str]] = {}
    orig_config = lm_experiment._gpt_config
    orig_score = lm_experiment.score_programs

    def gpt_config(cfg: Any, vocab_size: int) -> GPTConfig:
        base = orig_config(cfg, vocab_size)
        if overrides is None:
            return base
        return llama_config(
            vocab_size=base.vocab_size,
            block_size=base.block_size,
            n_layers=base.n_layers,
            n_heads=base.n_heads,
            d_model=base.d_model,
            **overrides,
        )

    def score(lines: list[str], known: set[str]) -> dict[str, Any]:
        captured["lines"] = lines
        return orig_score(lines, known)

    lm_experiment._gpt_config = gpt_config  # type: ignore[assignment]
    lm_experiment.score_programs = score
    try:
        result = lm_experiment.train_minilang_lm(
            seed=seed, device="cpu", progress=False
        )
    finally:
        lm_experiment._gpt_config = orig_config
        lm_experiment.score_programs = orig_score
    lines = captured["lines"]
    kinds = Counter(classify(line) for line in lines)
    return {
        "config": result.model.config.__dict__,
        "n_params": result.n_params,
        "val_loss": result.val_loss,
        "train_seconds": result.train_seconds,
        "n_generated_programs": len(lines),
        "acceptance_rate": result.acceptance_rate,
        "run_rate": result.run_rate,
        "novel_rate": result.novel_rate,
        "kinds": dict(kinds),
        "examples": {
            k: [line for line in lines if classify(line) == k][:3]
            for k in kinds
        },
    }


def kv_cache_elements(n_kv_heads: int, seq: int = 128) -> int:
    """Llama 形式の小さな GPT に seq トークンを読ませ、KV キャッシュの要素数。"""
    torch.manual_seed(0)
    c = llama_config(
        vocab_size=26,
        block_size=seq,
        n_layers=2,
        n_heads=4,
        d_model=64,
        d_ff=SWIGLU_WIDTH,
        n_kv_heads=n_kv_heads,
    )
    model = GPT(c).eval()
    caches = [KVCache() for _ in model.blocks]
    with torch.no_grad():
        model(torch.zeros(1, seq, dtype=torch.long), caches)
    total = 0
    for cache in caches:
        assert cache.k is not None and cache.v is not None
        total += cache.k.numel() + cache.v.numel()
    return total


def make_book(
    gpt2: dict[str, Any], llama: dict[str, Any], kv: dict[str, int]
) -> dict[str, str]:
    """本文に載せる値（"book"）を、記録した結果から作る。"""

    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    n = gpt2["n_generated_programs"]
    k = gpt2["kinds"]
    accepted = n - k.get("lex_error", 0) - k.get("parse_error", 0)
    lk = llama["kinds"]
    return {
        "n_programs": f"{n}",
        "accept": pct(gpt2["acceptance_rate"]),
        "n_accept": f"{accepted}",
        "n_reject": f"{n - accepted}",
        "n_runs": f"{k.get('runs', 0)}",
        "n_undefined": f"{k.get('undefined', 0)}",
        "n_div_zero": f"{k.get('div_zero', 0)}",
        "run_rate": pct(gpt2["run_rate"]),
        "novel": pct(gpt2["novel_rate"]),
        "gpt2_params": f"{gpt2['n_params']:,}",
        "gpt2_loss": f"{gpt2['val_loss']:.3f}",
        "gpt2_accept": pct(gpt2["acceptance_rate"]),
        "gpt2_run_rate": pct(gpt2["run_rate"]),
        "gpt2_undefined": pct(k.get("undefined", 0) / n),
        "llama_params": f"{llama['n_params']:,}",
        "llama_loss": f"{llama['val_loss']:.3f}",
        "llama_accept": pct(llama["acceptance_rate"]),
        "llama_run_rate": pct(llama["run_rate"]),
        "llama_undefined": pct(
            lk.get("undefined", 0) / llama["n_generated_programs"]
        ),
        "kv_mha": f"{kv['4']:,}",
        "kv_gqa": f"{kv['2']:,}",
        "kv_mqa": f"{kv['1']:,}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    add_rebook_argument(parser)
    args = parser.parse_args()
    if args.rebook:
        rebook(
            RESULTS,
            lambda r: make_book(
                r["gpt2"], r["llama"], r["kv_cache_elements"]
            ),
        )
        return
    set_threads(args.threads)

    gpt2 = train(None, args.seed)
    llama = train({"d_ff": SWIGLU_WIDTH, "n_kv_heads": 2}, args.seed)
    kv = {str(h): kv_cache_elements(h) for h in (4, 2, 1)}
    book = make_book(gpt2, llama, kv)
    record = {
        "description": "第17章: ミニ言語の GPT の生成物の内訳と、GPT-2 形式・"
        "Llama 形式の比較、GQA の KV キャッシュの要素数",
        "seed": args.seed,
        "swiglu_width": SWIGLU_WIDTH,
        "gpt2": gpt2,
        "llama": llama,
        "kv_cache_elements": kv,
        "environment": environment(),
        "book": book,
    }
    write_json(RESULTS, record)
    print(book)


if __name__ == "__main__":
    main()
