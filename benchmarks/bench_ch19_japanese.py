"""第19章: 日本語の地の文を GPT-2 の語彙でトークン化したときのトークン数。

本書の原稿（第1〜4部と前付けの md。第5部は執筆中で中身が変わるので
入れない）から、listings/ch19/04_japanese.py の `prose` で MyST の記法と
コードを除いた地の文を取り出し、次を測る。

- GPT-2 の語彙（data/gpt2/）で、1 文字あたりのトークン数、1 文字が 2 つ
  以上のトークンにまたがる文字の割合、文字の種類ごとの平均。
- 同じ地の文の 9 割の行（行番号を 10 で割った余りが 0 でない行）で
  バイトレベル BPE を学習し直し、残りの 1 割の行で 1 文字あたりの
  トークン数を測る（語彙の大きさを変えて）。学習は速さのために
  Hugging Face tokenizers の BpeTrainer で行う。最も小さい語彙では、
  自前の `ByteLevelBPETokenizer.train` と同じマージ列になることを確かめ
  てから使う。トークン数は自前の実装で数える。

    .venv/bin/python benchmarks/bench_ch19_japanese.py

結果は `benchmarks/results/ch19_japanese.json` に書く（数分）。
"""

from __future__ import annotations

import importlib
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import bench_bpe
import torch
from _common import environment, write_json

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from easy_transformer.data import data_path  # noqa: E402
from easy_transformer.tokenizer import ByteLevelBPETokenizer  # noqa: E402

ja = importlib.import_module("listings.ch19.04_japanese")

OUT = ROOT / "benchmarks" / "results" / "ch19_japanese.json"
SOURCES = ["book/frontmatter/*.md", "book/part[1-4]/*.md"]
KINDS = {
    "hiragana": "ひらがな",
    "katakana": "カタカナ",
    "kanji": "漢字",
    "ascii": "ASCII",
    "other": "その他",
}
VOCAB_SIZES = [256, 512, 1024, 2048, 4096, 8192]
CHECK_VOCAB_SIZE = 300  # 自前の学習と突き合わせる大きさ


def load_prose() -> tuple[str, list[str]]:
    """原稿の地の文と、読んだファイルの一覧。"""
    files = sorted(p for pat in SOURCES for p in ROOT.glob(pat))
    text = "\n".join(ja.prose(p.read_text(encoding="utf-8")) for p in files)
    return text, [str(p.relative_to(ROOT)) for p in files]


def summarize(costs: list[Any]) -> dict[str, Any]:
    """文字ごとの計測を、全体と文字の種類ごとにまとめる（改行は除く）。"""
    groups: dict[str, list[Any]] = defaultdict(list)
    for c in costs:
        if c.char == "\n":
            continue
        groups["all"].append(c)
        groups[ja.char_kind(c.char)].append(c)
    out = {}
    for name, label in [("all", "全体"), *KINDS.items()]:
        cs = groups[label if name != "all" else "all"]
        n = len(cs)
        out[name] = {
            "chars": n,
            "tokens_per_char": sum(c.share for c in cs) / n,
            "split_ratio": sum(c.pieces > 1 for c in cs) / n,
            "bytes_per_char": sum(len(c.char.encode()) for c in cs) / n,
        }
    return out


def hf_train(text: str, vocab_size: int) -> ByteLevelBPETokenizer:
    """tokenizers の BpeTrainer で学習し（bench_bpe と同じ設定）、自前の
    トークナイザに移す。"""
    hf = bench_bpe.hf_train(text, vocab_size)
    model = json.loads(hf.to_str())["model"]
    state = {
        "type": "ByteLevelBPETokenizer",
        "vocab": sorted(model["vocab"], key=model["vocab"].__getitem__),
        "special_tokens": [],
        "merges": [" ".join(m) for m in bench_bpe.merges_of(hf)],
    }
    return ByteLevelBPETokenizer.from_json(json.dumps(state))


def main() -> None:
    torch.set_num_threads(1)
    text, files = load_prose()
    lines = text.splitlines()
    train = "\n".join(ln for i, ln in enumerate(lines) if i % 10)
    test = "\n".join(ln for i, ln in enumerate(lines) if i % 10 == 0)

    gpt2 = ByteLevelBPETokenizer.from_gpt2_files(
        data_path("gpt2/encoder.json"), data_path("gpt2/vocab.bpe")
    )
    whole = summarize(ja.char_costs(gpt2, text))
    per_size: dict[str, Any] = {
        "gpt2": summarize(ja.char_costs(gpt2, test))
    }

    ours = ByteLevelBPETokenizer()
    ours.train(train, CHECK_VOCAB_SIZE)
    same = ours.merges == hf_train(train, CHECK_VOCAB_SIZE).merges
    if not same:
        raise SystemExit("自前の学習と tokenizers のマージ列が違います。")
    for size in VOCAB_SIZES:
        tok = hf_train(train, size)
        assert tok.decode(tok.encode(test)) == test
        per_size[str(size)] = summarize(ja.char_costs(tok, test))
        print(size, per_size[str(size)]["all"], flush=True)

    book = {
        "chars": f"{whole['all']['chars']:,}",
        "train_chars": f"{len(train):,}",
        "test_chars": f"{len(test):,}",
        "gpt2_tokens_per_char": f"{whole['all']['tokens_per_char']:.2f}",
        "gpt2_split_ratio": f"{whole['all']['split_ratio']:.0%}",
        "gpt2_test_tokens_per_char": (
            f"{per_size['gpt2']['all']['tokens_per_char']:.2f}"
        ),
    }
    for name in KINDS:
        k = whole[name]
        book[f"gpt2_{name}_tokens_per_char"] = f"{k['tokens_per_char']:.2f}"
        book[f"gpt2_{name}_split_ratio"] = f"{k['split_ratio']:.0%}"
        book[f"{name}_bytes_per_char"] = f"{k['bytes_per_char']:.2f}"
        book[f"{name}_share"] = f"{k['chars'] / whole['all']['chars']:.0%}"
    for size in VOCAB_SIZES:
        s = per_size[str(size)]["all"]
        book[f"retrain_{size}_tokens_per_char"] = (
            f"{s['tokens_per_char']:.2f}"
        )
    best = per_size[str(VOCAB_SIZES[-1])]
    for name in KINDS:
        value = best[name]["tokens_per_char"]
        book[f"retrain_best_{name}_tokens_per_char"] = f"{value:.2f}"
    result = {
        "description": "日本語の地の文の 1 文字あたりのトークン数",
        "sources": files,
        "split": "行番号 % 10 == 0 の行をテスト、残りを学習に使う",
        "same_merges_as_ours_at": CHECK_VOCAB_SIZE,
        "whole_text_gpt2": whole,
        "test_by_vocab_size": per_size,
        "vocab_sizes": VOCAB_SIZES,
        "environment": environment(),
        "book": book,
    }
    write_json(OUT, result)
    print(json.dumps(book, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
