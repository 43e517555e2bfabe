"""第12章: 原論文の base モデルのパラメータの内訳。

部品ごとの式は本文のリスト（listings/ch10/02_param_count.py）を使う。
語彙は原論文と同じくソースとターゲットで共有する約 37000。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from _figlib import FigureWriter, load_listing

VOCAB, D_MODEL, D_FF, N_LAYERS = 37000, 512, 2048, 6


def main() -> None:
    pc = load_listing("ch10/02_param_count.py")
    attn = N_LAYERS * pc.attention_params(D_MODEL)
    ffn = N_LAYERS * pc.ffn_params(D_MODEL, D_FF)
    norm = pc.layer_norm_params(D_MODEL)
    parts = [
        ("埋め込み（共有）", VOCAB * D_MODEL, "#8c8c8c"),
        ("エンコーダの自己注意", attn, "#4c72b0"),
        ("エンコーダの FFN", ffn, "#dd8452"),
        ("エンコーダの層正規化", N_LAYERS * 2 * norm, "#55a868"),
        ("デコーダの自己注意", attn, "#4c72b0"),
        ("デコーダのクロス注意", attn, "#8172b3"),
        ("デコーダの FFN", ffn, "#dd8452"),
        ("デコーダの層正規化", N_LAYERS * 3 * norm, "#55a868"),
    ]
    total = sum(n for _, n, _ in parts)
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    labels = [name for name, _, _ in parts][::-1]
    values = [n / 1e6 for _, n, _ in parts][::-1]
    colors = [c for _, _, c in parts][::-1]
    ax.barh(labels, values, color=colors)
    for y, v in enumerate(values):
        ax.text(
            v + 0.2,
            y,
            f"{v:.2f}M（{v * 1e6 / total:.1%}）",
            va="center",
            fontsize=8,
        )
    ax.set_xlim(0, max(values) * 1.35)
    ax.set_xlabel("パラメータの数（百万）")
    ax.set_title(
        f"原論文の base モデル: 合計 {total / 1e6:.1f}M（{total:,} 個）",
        fontsize=10,
    )
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
