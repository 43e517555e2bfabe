"""第5章: コード片で学習した埋め込みを、主成分分析で 2 次元に射影した図。

学習は本文のリスト（listings/ch05/01_code_embeddings.py）をそのまま使う。
点の色は字句の種類（予約語・識別子・数値・記号）で、学習には使っていない。
"""

from __future__ import annotations

import keyword

from _figlib import FigureWriter, load_listing, seed_everything
from matplotlib.lines import Line2D

from easy_transformer.viz import plot_embeddings_2d

KINDS = {
    "予約語": "#d62728",
    "識別子": "#1f77b4",
    "数値": "#2ca02c",
    "記号": "#7f7f7f",
}


def kind_of(token: str) -> str:
    """Python の字句の種類（図の色分けのためだけに使う）。"""
    if keyword.iskeyword(token):
        return "予約語"
    if token.isidentifier():
        return "識別子"
    if token.isdigit():
        return "数値"
    return "記号"


def main() -> None:
    seed_everything(0)
    ce = load_listing("ch05/01_code_embeddings.py")
    tok, model = ce.train_embeddings(ce.make_corpus(500))
    # 特殊トークン（<pad> など）はコーパスに現れないので描かない
    first = len(tok.special_tokens)
    words = tok.id_to_token[first:]
    emb = model.embed.weight.detach()[first:]
    fig = plot_embeddings_2d(emb, words)
    ax = fig.axes[0]
    ax.collections[0].set_color([KINDS[kind_of(w)] for w in words])
    handles = [
        Line2D([], [], marker="o", ls="", color=c, label=k)
        for k, c in KINDS.items()
    ]
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
