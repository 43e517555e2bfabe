"""第10章: ReLU、GELU（厳密）、GELU（tanh による近似）と、近似の誤差。

関数は easy_transformer.layers.ACTIVATIONS のものをそのまま使う。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from _figlib import FigureWriter

from easy_transformer.layers import ACTIVATIONS


def main() -> None:
    x = torch.linspace(-4, 4, 801)
    relu = ACTIVATIONS["relu"](x)
    gelu = ACTIVATIONS["gelu"](x)
    gelu_tanh = ACTIVATIONS["gelu_tanh"](x)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7, 3))
    ax1.plot(x, relu, color="#999999", label="ReLU")
    ax1.plot(x, gelu, color="#4c72b0", label="GELU（厳密）")
    ax1.plot(
        x,
        gelu_tanh,
        color="#c44e52",
        linestyle="--",
        label="GELU（tanh 近似）",
    )
    ax1.set_xlabel(r"入力 $x$")
    ax1.set_ylabel("出力")
    ax1.set_title("(a) 3 つの活性化関数", fontsize=10)
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)

    ax2.plot(x, (gelu_tanh - gelu) * 1e4, color="#c44e52")
    ax2.axhline(0, color="gray", linewidth=0.8)
    ax2.set_xlabel(r"入力 $x$")
    ax2.set_ylabel(r"tanh 近似 − 厳密（$\times 10^{-4}$）")
    ax2.set_title("(b) tanh 近似の誤差", fontsize=10)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
