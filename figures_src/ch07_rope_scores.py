"""第7章: RoPE で回したクエリとキーの内積は、位置の差だけで決まる。

同じクエリ q とキー k を、位置 m と n で回してから内積を取る。
回転はパッケージの RotaryEmbedding。左は m と n の表、右は m - n の関数。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from _figlib import FigureWriter, seed_everything

from easy_transformer.embedding import RotaryEmbedding

LENGTH = 32
HEAD_DIM = 16


def main() -> None:
    seed_everything(0)
    rope = RotaryEmbedding(HEAD_DIM, LENGTH)
    q, k = torch.randn(2, HEAD_DIM)
    # 位置 0..LENGTH-1 の同じベクトルを並べて、まとめて回す
    qs = rope(q.expand(LENGTH, HEAD_DIM))
    ks = rope(k.expand(LENGTH, HEAD_DIM))
    scores = (qs @ ks.T).numpy()
    fig, (ax_map, ax_line) = plt.subplots(
        1,
        2,
        figsize=(8.4, 3.6),
        layout="constrained",
        gridspec_kw={"width_ratios": [1, 1.3]},
    )
    limit = float(abs(scores).max())
    image = ax_map.imshow(
        scores,
        cmap="RdBu_r",
        vmin=-limit,
        vmax=limit,
        interpolation="nearest",
    )
    ax_map.set_xlabel("キーの位置 n")
    ax_map.set_ylabel("クエリの位置 m")
    ax_map.set_title("回したクエリとキーの内積", fontsize=10)
    fig.colorbar(image, ax=ax_map, shrink=0.85)
    # 曲線が重なることを見せるため、1 本は線で、残りは印だけで描く
    styles = {
        31: {"color": "lightgray", "lw": 3},
        16: {"marker": "o", "ls": "", "mfc": "none", "ms": 5},
        8: {"marker": "x", "ls": "", "ms": 4},
    }
    for m, style in styles.items():
        offsets = [m - n for n in range(LENGTH)]
        ax_line.plot(offsets, scores[m], label=f"m = {m}", **style)
    ax_line.set_xlabel("位置の差 m - n")
    ax_line.set_ylabel("内積")
    ax_line.set_title("クエリの位置 m を変えても同じ曲線", fontsize=10)
    ax_line.grid(alpha=0.3)
    ax_line.legend(fontsize=8)
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
