"""はじめに: 次に来るトークンの確率分布を、本書のコードで数えて図にする。

数える処理は本文のリスト（listings/ch00/01_next_token.py）をそのまま使う。
"""

from __future__ import annotations

from collections import Counter

import matplotlib.pyplot as plt
from _figlib import ROOT, FigureWriter, load_listing

SOURCE_DIRS = (
    "easy_transformer",
    "listings",
    "figures_src",
    "tools",
    "tests",
)
KEYWORD = "return"


def main() -> None:
    nt = load_listing("ch00/01_next_token.py")
    files = sorted(p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py"))
    counts: Counter[str] = Counter()
    for path in files:
        counts += nt.next_token_counts(
            path.read_text(encoding="utf-8"), KEYWORD
        )
    dist = nt.next_token_distribution(counts)
    top = list(dist.items())[:12][::-1]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.barh(
        [repr(tok) for tok, _ in top], [p for _, p in top], color="#6a4c93"
    )
    ax.set_xlabel("相対頻度（確率の推定値）")
    ax.set_ylabel(f"{KEYWORD} の直後のトークン")
    ax.set_title(
        f"本書のリポジトリの Python ファイル {len(files)} 個、"
        f"{sum(counts.values())} 回の {KEYWORD} から",
        fontsize=9,
    )
    for y, (_, p) in enumerate(top):
        ax.text(p, y, f" {p:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, top[-1][1] * 1.2)
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
