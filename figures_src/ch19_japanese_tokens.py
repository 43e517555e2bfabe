"""第19章: 日本語の地の文のトークン数（文字の種類ごと、語彙の大きさごと）。

benchmarks/bench_ch19_japanese.py が書いた
benchmarks/results/ch19_japanese.json を読んで 2 つの図を作る。

- kinds: 文字の種類ごとの 1 文字あたりのトークン数（GPT-2 の語彙と、
  地の文で学習し直した最大の語彙。どちらもテストの行で測った値）
- vocab: 学習し直した語彙の大きさと、1 文字あたりのトークン数
"""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
from _figlib import ROOT, FigureWriter, seed_everything

RESULTS = ROOT / "benchmarks" / "results" / "ch19_japanese.json"
KINDS = {
    "hiragana": "ひらがな",
    "katakana": "カタカナ",
    "kanji": "漢字",
    "ascii": "ASCII",
    "other": "その他",
}


def main() -> None:
    seed_everything(0)
    data = json.loads(RESULTS.read_text(encoding="utf-8"))
    writer = FigureWriter(__file__)
    sizes = data["vocab_sizes"]
    by_size = data["test_by_vocab_size"]
    largest = str(sizes[-1])

    fig, ax = plt.subplots(figsize=(6, 3.2))
    xs = list(range(len(KINDS)))
    width = 0.38
    gpt2 = [by_size["gpt2"][k]["tokens_per_char"] for k in KINDS]
    ours = [by_size[largest][k]["tokens_per_char"] for k in KINDS]
    ax.bar([x - width / 2 for x in xs], gpt2, width, label="GPT-2 の語彙")
    ax.bar(
        [x + width / 2 for x in xs],
        ours,
        width,
        label=f"地の文で学習した語彙（{int(largest):,}）",
    )
    ax.set_xticks(xs, list(KINDS.values()))
    ax.set_ylabel("1 文字あたりのトークン数")
    ax.axhline(1.0, color="gray", lw=0.8, ls=":")
    ax.legend(frameon=False)
    fig.tight_layout()
    writer.save(fig, "kinds")

    fig, ax = plt.subplots(figsize=(6, 3.2))
    values = [by_size[str(s)]["all"]["tokens_per_char"] for s in sizes]
    ax.plot(sizes, values, marker="o", label="地の文で学習した語彙")
    ax.axhline(
        by_size["gpt2"]["all"]["tokens_per_char"],
        color="C1",
        ls="--",
        label="GPT-2 の語彙（50,257）",
    )
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [f"{s:,}" for s in sizes])
    ax.set_xlabel("語彙の大きさ")
    ax.set_ylabel("1 文字あたりのトークン数")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False)
    fig.tight_layout()
    writer.save(fig, "vocab")


if __name__ == "__main__":
    main()
