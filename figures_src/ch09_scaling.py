"""第9章: 内積の分散と softmax の張り付きが d_k とともにどう変わるか。

計算は本文のリスト（listings/ch09/01_dot_product_scale.py）を使う。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from _figlib import FigureWriter, load_listing, seed_everything

D_KS = (4, 8, 16, 32, 64, 128, 256, 512)
SEQ = 16


def main() -> None:
    seed_everything(0)
    sc = load_listing("ch09/01_dot_product_scale.py")
    raw_var = [sc.dot_products(d).var().item() for d in D_KS]
    scaled_var = [(sc.dot_products(d) / d**0.5).var().item() for d in D_KS]
    raw_max = [sc.mean_max_weight(d, SEQ, scale=False) for d in D_KS]
    scaled_max = [sc.mean_max_weight(d, SEQ, scale=True) for d in D_KS]

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7, 3))
    ax1.plot(
        D_KS,
        raw_var,
        "o-",
        color="#c44e52",
        label=r"$\boldsymbol{q} \cdot \boldsymbol{k}$",
    )
    ax1.plot(
        D_KS,
        scaled_var,
        "s-",
        color="#4c72b0",
        label=r"$\boldsymbol{q} \cdot \boldsymbol{k} / \sqrt{d_k}$",
    )
    ax1.set_xscale("log", base=2)
    ax1.set_yscale("log", base=2)
    ax1.set_xlabel(r"$d_k$")
    ax1.set_ylabel("内積の分散")
    ax1.set_title("(a) 内積の分散", fontsize=10)
    ax1.legend()
    ax1.grid(alpha=0.3)

    ax2.plot(
        D_KS,
        raw_max,
        "o-",
        color="#c44e52",
        label=r"$\sqrt{d_k}$ で割らない",
    )
    ax2.plot(
        D_KS,
        scaled_max,
        "s-",
        color="#4c72b0",
        label=r"$\sqrt{d_k}$ で割る",
    )
    ax2.axhline(1 / SEQ, color="gray", linestyle="--", linewidth=0.8)
    ax2.text(4, 1 / SEQ + 0.02, "一様（1/16）", fontsize=8, color="gray")
    ax2.set_xscale("log", base=2)
    ax2.set_ylim(0, 1.05)
    ax2.set_xlabel(r"$d_k$")
    ax2.set_ylabel("最大の重みの平均")
    ax2.set_title(f"(b) キー {SEQ} 個への softmax の最大値", fontsize=10)
    ax2.legend(loc="center right")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
