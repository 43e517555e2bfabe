"""自前のバイトレベル BPE と Hugging Face tokenizers の速さを比べる。

同じ実行の中で、同じテキスト・同じ設定（GPT-2 と同じ事前分割、語彙の
大きさ）について、学習にかかる時間と encode のスループットを測り、比を
表示して benchmarks/results/bpe.json に書く。学習したマージ列と encode
の結果が一致することも確かめる。

    .venv/bin/python benchmarks/bench_bpe.py [--train-chars N] ...

テキストは tinyshakespeare（リポジトリの隣の shared/data/ にあれば）、
無ければリポジトリの .md と .py をつないだもの。教育用の実装は Python
だけで書いてあるので、Rust の tokenizers に勝つことは目的ではない。
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import tokenizers
from _common import write_json
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models, pre_tokenizers, trainers

from easy_transformer.tokenizer import ByteLevelBPETokenizer

ROOT = Path(__file__).resolve().parent.parent
SHAKESPEARE = (
    ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
)
RESULT = ROOT / "benchmarks" / "results" / "bpe.json"


def load_text() -> tuple[str, str]:
    """ベンチマークに使うテキストと、その出どころ。"""
    if SHAKESPEARE.exists():
        return SHAKESPEARE.read_text(encoding="utf-8"), "tinyshakespeare"
    files = sorted(
        p
        for pattern in ("**/*.md", "**/*.py")
        for p in ROOT.glob(pattern)
        if not {".venv", "node_modules", "build", "dist"} & set(p.parts)
    )
    text = "\n".join(p.read_text(encoding="utf-8") for p in files)
    return text, "リポジトリの .md と .py"


def best_time(run: Callable[[], object], repeat: int) -> float:
    """run を repeat 回実行し、いちばん速かった秒数を返す。"""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def hf_train(text: str, vocab_size: int) -> HFTokenizer:
    """自前の実装と同じ設定で tokenizers の BPE を学習する。"""
    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf.train_from_iterator([text], trainer)
    return hf


def merges_of(hf: HFTokenizer) -> list[tuple[str, str]]:
    """tokenizers のマージ列（版により "a b" か ["a", "b"] の形）。"""
    merges = json.loads(hf.to_str())["model"]["merges"]
    return [
        (m.split(" ")[0], m.split(" ")[1])
        if isinstance(m, str)
        else (m[0], m[1])
        for m in merges
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-chars", type=int, default=200_000)
    parser.add_argument("--encode-chars", type=int, default=1_000_000)
    parser.add_argument("--vocab-size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    text, source = load_text()
    train_text = text[: args.train_chars]
    encode_text = text[: args.encode_chars]
    print(
        f"テキスト: {source}（学習 {len(train_text):,} 文字、"
        f"encode {len(encode_text):,} 文字）、語彙 {args.vocab_size}"
    )

    # 学習（自前の実装は遅いので 1 回だけ測る）
    ours = ByteLevelBPETokenizer()
    start = time.perf_counter()
    ours.train(train_text, args.vocab_size)
    ours_train = time.perf_counter() - start
    start = time.perf_counter()
    hf = hf_train(train_text, args.vocab_size)
    hf_train_s = time.perf_counter() - start
    same_merges = merges_of(hf) == ours.merges

    # encode。どちらも断片ごとの結果を覚えるので、毎回作り直して
    # 覚えていない状態から測る。テキスト全体を 1 つの文字列で渡す場合と、
    # 行ごとのリストで渡す場合（tokenizers は encode_batch で並列に処理
    # する）の 2 通り
    lines = encode_text.splitlines(keepends=True)
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / "ours.json"
        ours.save(saved)
        hf_json = hf.to_str()

        def fresh_ours() -> ByteLevelBPETokenizer:
            return ByteLevelBPETokenizer.load(saved)

        def fresh_hf() -> HFTokenizer:
            return HFTokenizer.from_str(hf_json)

        ours_ids = fresh_ours().encode(encode_text)
        same_ids = ours_ids == fresh_hf().encode(encode_text).ids
        seconds = {
            "ours_whole": best_time(
                lambda: fresh_ours().encode(encode_text), args.repeat
            ),
            "hf_whole": best_time(
                lambda: fresh_hf().encode(encode_text), args.repeat
            ),
            "ours_lines": best_time(
                lambda: list(map(fresh_ours().encode, lines)),
                args.repeat,
            ),
            "hf_lines": best_time(
                lambda: fresh_hf().encode_batch(lines), args.repeat
            ),
        }

    n_bytes = len(encode_text.encode("utf-8"))
    result = {
        "text_source": source,
        "train_chars": len(train_text),
        "encode_chars": len(encode_text),
        "encode_bytes": n_bytes,
        "vocab_size": args.vocab_size,
        "merges": len(ours.merges),
        "same_merges_as_hf": same_merges,
        "same_ids_as_hf": same_ids,
        "tokens": len(ours_ids),
        "train_seconds": {"ours": ours_train, "hf": hf_train_s},
        "train_ratio_ours_over_hf": ours_train / hf_train_s,
        "encode_seconds": seconds,
        "encode_mb_per_second": {
            k: n_bytes / v / 1e6 for k, v in seconds.items()
        },
        "encode_ratio_ours_over_hf": {
            "whole": seconds["ours_whole"] / seconds["hf_whole"],
            "lines": seconds["ours_lines"] / seconds["hf_lines"],
        },
        "environment": {
            "python": sys.version.split()[0],
            "tokenizers": tokenizers.__version__,
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
        },
    }

    print(f"マージ列が tokenizers と一致: {same_merges}")
    print(f"encode の結果が tokenizers と一致: {same_ids}")
    print(
        f"学習: 自前 {ours_train:.2f} 秒、tokenizers {hf_train_s:.3f} 秒"
        f"（自前は {result['train_ratio_ours_over_hf']:.0f} 倍の時間）"
    )
    speed = result["encode_mb_per_second"]
    ratio = result["encode_ratio_ours_over_hf"]
    for kind, label in [("whole", "1 つの文字列"), ("lines", "行ごと")]:
        print(
            f"encode（{label}）: 自前 {speed['ours_' + kind]:.2f} MB/秒、"
            f"tokenizers {speed['hf_' + kind]:.2f} MB/秒"
            f"（自前は {ratio[kind]:.2f} 倍の時間）"
        )
    write_json(RESULT, result)
    print(f"結果を {RESULT.relative_to(ROOT)} に書きました")


if __name__ == "__main__":
    main()
