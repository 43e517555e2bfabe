"""第6章: 柔らかい辞書引きの重みが、温度によってどう変わるか。

クエリ height と 4 つのキー（完全一致・綴り誤り・無関係 2 つ）の重みを、
温度の関数として描く。計算は本文のリスト（listings/ch06/01_soft_lookup.py）。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from _figlib import FigureWriter, load_listing

KEYS = ["height", "hieght", "width", "x"]
STYLES = ["-", "--", "-.", ":"]


def main() -> None:
    sl = load_listing("ch06/01_soft_lookup.py")
    vectors = sl.name_vectors(["height", *KEYS])
    query, keys = vectors[:1], vectors[1:]
    temperatures = np.logspace(-2, 1, 200)
    weights = np.stack(
        [
            sl.soft_lookup(query, keys, torch.eye(len(KEYS)), t)[1][
                0
            ].numpy()
            for t in temperatures
        ]
    )
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for j, key in enumerate(KEYS):
        ax.plot(
            temperatures,
            weights[:, j],
            STYLES[j],
            label=f"キー {key}",
        )
    ax.set_xscale("log")
    ax.invert_xaxis()  # 左から右へ温度を下げていく
    ax.set_xlabel("温度（右へ行くほど低い）")
    ax.set_ylabel("クエリ height からの重み")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", fontsize=8)
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
