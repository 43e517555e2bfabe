"""第3章: softmax の温度と、分布のエントロピー。

softmax とエントロピーは本文のリスト（listings/ch03/02_softmax.py）を使う。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from _figlib import FigureWriter, load_listing, seed_everything

LOGITS = np.array([2.0, 1.0, 0.1, -1.0, -2.0])
SHOWN = (0.5, 1.0, 2.0)
COLORS = ("#d1495b", "#6a4c93", "#00798c")


def main() -> None:
    seed_everything(0)
    s = load_listing("ch03/02_softmax.py")
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(8, 3), gridspec_kw={"width_ratios": [1.3, 1]}
    )
    width = 0.8 / len(SHOWN)
    xs = np.arange(len(LOGITS))
    for k, (t, color) in enumerate(zip(SHOWN, COLORS, strict=True)):
        p = s.softmax(LOGITS, t)
        left.bar(
            xs + (k - 1) * width,
            p,
            width,
            color=color,
            label=f"T = {t}（H = {s.entropy(p):.2f}）",
        )
    left.set_xticks(xs, [f"{z:+.1f}" for z in LOGITS])
    left.set_xlabel("ロジット")
    left.set_ylabel("確率")
    left.set_ylim(0, 1)
    left.legend(fontsize=8)
    temps = np.logspace(-2, 2, 200)
    h = [s.entropy(s.softmax(LOGITS, t)) for t in temps]
    right.plot(temps, h, color="#6a4c93")
    right.axhline(np.log(len(LOGITS)), color="#999999", ls="--", lw=1)
    right.text(
        0.012, np.log(len(LOGITS)) - 0.15, "log 5（一様分布）", fontsize=8
    )
    for t, color in zip(SHOWN, COLORS, strict=True):
        right.plot(t, s.entropy(s.softmax(LOGITS, t)), "o", color=color)
    right.set_xscale("log")
    right.set_xlabel("温度 T（対数目盛）")
    right.set_ylabel("エントロピー H（ナット）")
    right.set_ylim(0, 1.8)
    fig.subplots_adjust(wspace=0.35)
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
