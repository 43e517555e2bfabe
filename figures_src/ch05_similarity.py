"""第5章: one-hot と学習した埋め込みの、トークンどうしのコサイン類似度。

学習は本文のリスト（listings/ch05/01_code_embeddings.py）をそのまま使う。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from _figlib import FigureWriter, load_listing, seed_everything

# 役割ごとにまとめて並べる（ループ変数、累積、関数名、引数、予約語、記号）
WORDS = [
    *("i", "j", "k"),
    *("total", "count", "result"),
    *("area", "size", "norm"),
    *("x", "y", "z"),
    *("for", "while", "if", "def", "return"),
    *("+", "*"),
]


def main() -> None:
    seed_everything(0)
    ce = load_listing("ch05/01_code_embeddings.py")
    tok, model = ce.train_embeddings(ce.make_corpus(500))
    ids = torch.tensor([tok.token_to_id[w] for w in WORDS])
    one_hot = F.one_hot(ids, tok.vocab_size).float()
    learned = model.embed.weight.detach()[ids]
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 4.2), layout="constrained")
    titles = ("one-hot", "学習した埋め込み（16 次元）")
    pairs = zip(axes, (one_hot, learned), titles, strict=True)
    for ax, vectors, title in pairs:
        unit = F.normalize(vectors, dim=-1)
        image = ax.imshow(
            (unit @ unit.T).numpy(), cmap="RdBu_r", vmin=-1.0, vmax=1.0
        )
        ticks = range(len(WORDS))
        ax.set_xticks(ticks, labels=WORDS, rotation=90, fontsize=8)
        ax.set_yticks(ticks, labels=WORDS, fontsize=8)
        ax.tick_params(length=0)
        ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=axes, shrink=0.8, label="コサイン類似度")
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
