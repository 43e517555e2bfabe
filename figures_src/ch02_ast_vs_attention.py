"""第2章: 構文木の親子関係（ast）と、学習した注意の重みを並べて描く。

上側の弧は Python の ast が決めた「子 → 親」、下側の弧は注意の重み
（クエリ → キー）。学習と重みの計算は本文のリスト
（listings/ch02/02_attention_as_ast.py）をそのまま使う。
"""

from __future__ import annotations

from types import ModuleType

import matplotlib.pyplot as plt
import numpy as np
import torch
from _figlib import FigureWriter, load_listing, seed_everything
from matplotlib.axes import Axes
from matplotlib.patches import Arc

EXAMPLES = ("(x-2)*3+y/4", "x*(y+3)-z/2")
SHOW_WEIGHT = 0.05  # これより小さい重みの弧は描かない
GAP = 0.3  # 文字と弧の根元の間
AST_COLOR, OK_COLOR, NG_COLOR = "#00798c", "#6a4c93", "#d1495b"


def arc(
    ax: Axes, i: int, j: int, up: bool, color: str, lw: float, alpha: float
) -> None:
    """位置 i から j へ半楕円の弧を描き、行き先 j に点を打つ。"""
    base = GAP if up else -GAP
    width = abs(i - j)
    ax.add_patch(
        Arc(
            ((i + j) / 2, base),
            width,
            0.9 * width,
            theta1=0 if up else 180,
            theta2=180 if up else 360,
            color=color,
            lw=lw,
            alpha=alpha,
        )
    )
    ax.plot(j, base, "o", color=color, ms=3.5, alpha=alpha)


def draw(ax: Axes, m: ModuleType, model: torch.nn.Module, src: str) -> None:
    tokens, heads = m.ast_heads(src)
    with torch.no_grad():
        w = model(m.encode([src]))[0].numpy()
    for x, t in enumerate(tokens):
        color = "#aaaaaa" if heads[x] is None else "black"
        if heads[x] is not None and int(np.argmax(w[x])) != heads[x]:
            color = NG_COLOR  # 最大の重みが親を外したトークン
        ax.text(x, 0, t, ha="center", va="center", fontsize=13, color=color)
    for i, h in enumerate(heads):
        if h is None:
            continue
        if h == i:
            ax.text(
                i, GAP + 0.2, "根", ha="center", fontsize=8, color=AST_COLOR
            )
            continue
        arc(ax, i, h, True, AST_COLOR, 1.6, 1.0)
    for i, h in enumerate(heads):
        if h is None:
            continue
        for j in np.argsort(w[i]):  # 重い弧を後に描いて上に重ねる
            if j == i or w[i, j] < SHOW_WEIGHT:
                continue
            color = OK_COLOR if j == h else NG_COLOR
            weight = float(w[i, j])
            arc(
                ax,
                i,
                int(j),
                False,
                color,
                0.4 + 3.5 * weight,
                min(1.0, 0.3 + weight),
            )
    n = len(tokens)
    up = max(
        (abs(i - h) for i, h in enumerate(heads) if h is not None),
        default=1,
    )
    down = max(
        (
            abs(i - j)
            for i in range(n)
            for j in range(n)
            if heads[i] is not None and w[i, j] >= SHOW_WEIGHT
        ),
        default=1,
    )
    ax.set_xlim(-1.5, n)
    ax.set_ylim(-0.45 * down - GAP - 0.3, 0.45 * up + GAP + 0.5)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.text(-1.4, GAP, "ast", fontsize=9, color=AST_COLOR, va="bottom")
    ax.text(-1.4, -GAP, "注意", fontsize=9, color=OK_COLOR, va="top")


def main() -> None:
    seed_everything(0)
    torch.set_num_threads(1)
    m = load_listing("ch02/02_attention_as_ast.py")
    model = m.train_parent_head(m.random_exprs(600, seed=0))
    fig, axes = plt.subplots(len(EXAMPLES), 1, figsize=(6.4, 6.4))
    for ax, src in zip(axes, EXAMPLES, strict=True):
        draw(ax, m, model, src)
        ax.set_title(src, fontsize=11, family="monospace")
    fig.text(
        0.5,
        0.02,
        "上: ast の「子 → 親」　下: 注意の重み（太いほど重い。"
        "紫は正しい親、赤はそれ以外。赤い字は最大の重みが親を外したトークン）",
        ha="center",
        fontsize=8,
    )
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
