"""EPUB の表紙画像を作る。書名・副題・著者・版は conf.py から読む。"""

from __future__ import annotations

import ast
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from _figlib import ROOT, FigureWriter, seed_everything


def book_metadata() -> dict[str, str]:
    """conf.py の代入文から書誌情報の文字列を取り出す（実行はしない）。"""
    tree = ast.parse(Path(ROOT / "conf.py").read_text(encoding="utf-8"))
    wanted = {"book_title", "book_subtitle", "author", "release"}
    meta: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(
            node.value, ast.Constant
        ):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in wanted:
                    meta[target.id] = str(node.value.value)
    return meta


def main() -> None:
    seed_everything(0)
    meta = book_metadata()
    fig = plt.figure(figsize=(6, 8.5))  # 縦長（おおよそ B5 の比率）
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    # 背景: 8 ヘッド分の「注意の重み」に見える模様（乱数から作る飾り）
    weights = np.random.default_rng(0).random((16, 16))
    weights = np.tril(weights)
    weights = weights / weights.sum(axis=1, keepdims=True)
    ax.imshow(
        weights,
        cmap="Purples",
        extent=(0, 1, 0, 0.55),
        aspect="auto",
        alpha=0.85,
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.text(
        0.5, 0.83, meta["book_title"], ha="center", va="center", fontsize=30
    )
    ax.text(
        0.5,
        0.74,
        meta["book_subtitle"],
        ha="center",
        va="center",
        fontsize=15,
    )
    ax.text(
        0.5,
        0.64,
        f"{meta['author']}　第 {meta['release']} 版",
        ha="center",
        va="center",
        fontsize=11,
    )
    # PNG は EPUB の表紙、PDF は PDF 版の表紙（conf.py の _titlepage）
    FigureWriter(__file__).save(fig, formats=("png", "pdf"))


if __name__ == "__main__":
    main()
