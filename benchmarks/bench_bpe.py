"""自前のバイトレベル BPE と Hugging Face tokenizers の速さを比べる。

同じテキスト（同梱の tinyshakespeare）・同じ設定（GPT-2 と同じ事前分割、
語彙の大きさ）で、次の 3 つを測る。

- 学習: 学習したマージ列が tokenizers と同じことを確かめてから測る。
- encode（テキスト全体を 1 つの文字列で渡す）
- encode（行ごとのリストで渡す。tokenizers は encode_batch）

encode の結果（トークン ID の列）が tokenizers と同じことも確かめる。
どれも 2 つの実装を交互に何回か測り（回ごとに順番を入れ替える）、回ごと
の CPU 時間の比（自前 / tokenizers。何倍の時間がかかるか）の中央値と
範囲を出す。tokenizers は Rust の rayon で並列に動くので、`--threads`
（既定 1）で RAYON_NUM_THREADS をそろえ、JSON に記録する。教育用の実装
は Python だけで書いてあるので、Rust の tokenizers に勝つことは目的では
ない。

    .venv/bin/python benchmarks/bench_bpe.py [--threads 1] [--rounds 3]

データが無い（または中身が記録と違う）ときは、終了コード 1 で終わる。
結果は `benchmarks/results/bpe.json` に書く。
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

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

from easy_transformer.data import DataError, data_path
from easy_transformer.tokenizer import ByteLevelBPETokenizer

OUT = RESULTS / "bpe.json"
DATA = "tinyshakespeare/input.txt"


def hf_train(text: str, vocab_size: int) -> Any:
    """自前の実装と同じ設定で tokenizers の BPE を学習する。"""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    hf = Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf.train_from_iterator([text], trainer)
    return hf


def merges_of(hf: Any) -> list[tuple[str, str]]:
    """tokenizers のマージ列（版により "a b" か ["a", "b"] の形）。"""
    merges = json.loads(hf.to_str())["model"]["merges"]
    return [
        (m.split(" ")[0], m.split(" ")[1])
        if isinstance(m, str)
        else (m[0], m[1])
        for m in merges
    ]


def train_ours(text: str, vocab_size: int) -> ByteLevelBPETokenizer:
    tok = ByteLevelBPETokenizer()
    tok.train(text, vocab_size)
    return tok


def measure_training(
    text: str, vocab_size: int, rounds: int
) -> tuple[dict[str, Any], ByteLevelBPETokenizer, Any, dict[str, Any]]:
    """学習を交互に測る。(比, 自前, tokenizers, 一致の記録) を返す。"""
    ours = train_ours(text, vocab_size)
    hf = hf_train(text, vocab_size)
    check = check_equal(
        "学習したマージ列（自前と tokenizers）", ours.merges, merges_of(hf)
    )
    timings = alternate(
        {
            "ours": lambda: train_ours(text, vocab_size),
            "hf": lambda: hf_train(text, vocab_size),
        },
        rounds,
        warmup=0,
    )
    return timings.ratio("ours", "hf"), ours, hf, check


def measure_encoding(
    ours: ByteLevelBPETokenizer, hf: Any, text: str, rounds: int
) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """encode を交互に測る。(比, 一致の記録, トークン数) を返す。

    どちらも断片ごとの結果を覚えるので、毎回作り直して、覚えていない
    状態から測る。
    """
    from tokenizers import Tokenizer

    state = ours.to_json()
    hf_json = hf.to_str()

    def fresh_ours() -> ByteLevelBPETokenizer:
        return ByteLevelBPETokenizer.from_json(state)

    def fresh_hf() -> Any:
        return Tokenizer.from_str(hf_json)

    lines = text.splitlines(keepends=True)
    ours_ids = fresh_ours().encode(text)
    checks = [
        check_equal(
            "encode（1 つの文字列）の ID 列",
            ours_ids,
            fresh_hf().encode(text).ids,
        ),
        check_equal(
            "encode（行ごと）の ID 列",
            [fresh_ours().encode(x) for x in lines[:2000]],
            [e.ids for e in fresh_hf().encode_batch(lines[:2000])],
        ),
    ]
    runs: dict[str, Callable[[], object]] = {
        "ours_whole": lambda: fresh_ours().encode(text),
        "hf_whole": lambda: fresh_hf().encode(text),
        "ours_lines": lambda: list(map(fresh_ours().encode, lines)),
        "hf_lines": lambda: fresh_hf().encode_batch(lines),
    }
    timings = alternate(runs, rounds, warmup=0)
    ratios = {
        "whole": timings.ratio("ours_whole", "hf_whole"),
        "lines": timings.ratio("ours_lines", "hf_lines"),
        "mb_per_s_median": {
            name: len(text.encode("utf-8")) / timings.median(name) / 1e6
            for name in runs
        },
    }
    return ratios, checks, len(ours_ids)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-chars", type=int, default=200_000)
    parser.add_argument("--encode-chars", type=int, default=1_000_000)
    parser.add_argument("--vocab-size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    add_threads_argument(parser)
    return parser.parse_args(argv)


def measure(
    train_text: str, encode_text: str, vocab_size: int, rounds: int
) -> dict[str, Any]:
    """学習、encode の順に測り、JSON に載せる値をまとめて返す。"""
    train_ratio, ours, hf, train_check = measure_training(
        train_text, vocab_size, rounds
    )
    encode, encode_checks, n_tokens = measure_encoding(
        ours, hf, encode_text, rounds
    )
    return {
        "merges": len(ours.merges),
        "tokens": n_tokens,
        "checks": [train_check, *encode_checks],
        "train_ratio": train_ratio,
        "encode": encode,
    }


def build_result(
    train_text: str, encode_text: str, vocab_size: int, m: dict[str, Any]
) -> dict[str, Any]:
    """measure の値から、書き出す JSON を組み立てる。"""
    import tokenizers

    train_ratio, encode = m["train_ratio"], m["encode"]
    return {
        "description": "自前のバイトレベル BPE と HF tokenizers の時間の比"
        "（自前 / tokenizers。何倍の時間がかかるか）",
        "method": "交互に測り、回ごとの CPU 時間の比の中央値と範囲",
        "text_source": DATA,
        "train_chars": len(train_text),
        "encode_chars": len(encode_text),
        "encode_bytes": len(encode_text.encode("utf-8")),
        "vocab_size": vocab_size,
        "merges": m["merges"],
        "tokens": m["tokens"],
        "checks": m["checks"],
        "same_merges_as_hf": True,
        "same_ids_as_hf": True,
        "train_time_ratio_ours_over_hf": train_ratio,
        "encode_time_ratio_ours_over_hf": {
            "whole": encode["whole"],
            "lines": encode["lines"],
        },
        "encode_mb_per_second_median": encode["mb_per_s_median"],
        "tokenizers": tokenizers.__version__,
        "environment": environment(),
        "book": {
            "train_ratio": describe_ratio(train_ratio, digits=0),
            "encode_whole_ratio": describe_ratio(encode["whole"], digits=1),
            "encode_lines_ratio": describe_ratio(encode["lines"], digits=1),
        },
    }


def print_summary(m: dict[str, Any]) -> None:
    print("マージ列と encode の結果は tokenizers と一致")
    print(
        f"学習: 自前は tokenizers の {describe_ratio(m['train_ratio'], 0)}の時間"
    )
    for kind, label in [("whole", "1 つの文字列"), ("lines", "行ごと")]:
        print(
            f"encode（{label}）: 自前は "
            f"{describe_ratio(m['encode'][kind], 1)}の時間"
        )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # tokenizers が並列処理を始める前に RAYON_NUM_THREADS を設定する
    set_threads(args.threads)
    try:
        text = data_path(DATA).read_text(encoding="utf-8")
    except DataError as exc:
        print(f"データを読めません: {exc}", file=sys.stderr)
        sys.exit(1)
    train_text = text[: args.train_chars]
    encode_text = text[: args.encode_chars]
    print(
        f"テキスト: {DATA}（学習 {len(train_text):,} 文字、"
        f"encode {len(encode_text):,} 文字）、語彙 {args.vocab_size}"
    )
    m = measure(train_text, encode_text, args.vocab_size, args.rounds)
    write_json(
        OUT, build_result(train_text, encode_text, args.vocab_size, m)
    )
    print_summary(m)
    print(f"結果を {OUT} に書きました")


if __name__ == "__main__":
    main()
