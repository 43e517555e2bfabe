"""第7章: 正弦波の位置エンコーディング（64 位置 × 64 次元）。

表はパッケージの sinusoidal_encoding で作り、viz.plot_positional_encoding で
描く。
"""

from __future__ import annotations

from _figlib import FigureWriter

from easy_transformer.embedding import sinusoidal_encoding
from easy_transformer.viz import plot_positional_encoding


def main() -> None:
    pe = sinusoidal_encoding(max_len=64, d_model=64)
    fig = plot_positional_encoding(pe, dims=[0, 2, 8, 16])
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
