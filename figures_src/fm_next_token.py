"""はじめに: 「次に来るトークンの確率分布」を、このリポジトリの Python コードで数えて図にする。

Python 標準の字句解析器 `tokenize` でソースをトークン列にし、予約語 `return` の直後に
来たトークンを数える。言語モデルが学ぶものの最も素朴な形（バイグラムの頻度）である。
"""

from __future__ import annotations

import io
import tokenize
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
from _figlib import ROOT, FigureWriter

SOURCE_DIRS = ("easy_transformer", "listings", "figures_src", "tools", "tests")
SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}


def significant_tokens(source: str) -> list[str]:
    """コメントと改行・字下げを除いたトークンの文字列を返す。"""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [tok.string for tok in tokens if tok.type not in SKIP]


def count_after(keyword: str) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    files = sorted(p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py"))
    for path in files:
        toks = significant_tokens(path.read_text(encoding="utf-8"))
        counts.update(b for a, b in zip(toks, toks[1:]) if a == keyword)
    return counts, len(files)


def main() -> None:
    counts, n_files = count_after("return")
    total = sum(counts.values())
    top = counts.most_common(12)[::-1]
    labels = [repr(tok) if tok.strip() else "(空)" for tok, _ in top]
    probs = [c / total for _, c in top]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.barh(labels, probs, color="#6a4c93")
    ax.set_xlabel("相対頻度（確率の推定値）")
    ax.set_title(f"return の直後のトークン（{n_files} ファイル、{total} 回の出現から）", fontsize=10)
    for y, p in enumerate(probs):
        ax.text(p, y, f" {p:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, max(probs) * 1.2)
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
