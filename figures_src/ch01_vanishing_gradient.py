"""第1章: RNN・LSTM・自己注意で、末尾の出力から各入力へ戻る勾配を比べる。

計算は本文のリスト（listings/ch01/02_vanishing_gradient.py）をそのまま使う。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from _figlib import FigureWriter, load_listing, seed_everything

SEQ_LEN = 100
SEEDS = range(5)
LABELS = {
    "rnn": "RNN（tanh）",
    "lstm": "LSTM（PyTorch の既定の初期値）",
    "lstm_forget1": "LSTM（忘却ゲートのバイアス 1）",
    "attention": "自己注意（1 層、因果マスク付き）",
}
STYLES = {
    "rnn": ("#d1495b", "-"),
    "lstm": ("#edae49", "--"),
    "lstm_forget1": ("#00798c", "-."),
    "attention": ("#6a4c93", "-"),
}


def main() -> None:
    seed_everything(0)
    torch.set_num_threads(1)
    # float32 では、距離 60 あたりから、勾配の成分は表せても、ノルムを
    # 求める途中の 2 乗（1e-46 ほど）がアンダーフローして 0 になる。
    # 図では倍精度で計算して減り方を最後まで描く
    torch.set_default_dtype(torch.float64)
    vg = load_listing("ch01/02_vanishing_gradient.py")
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for kind in vg.KINDS:
        norms = torch.stack(
            [vg.input_grad_norms(kind, SEQ_LEN, seed=s) for s in SEEDS]
        )
        # 何桁も違う値を平均するので、対数の平均（幾何平均）を取る
        mean = norms.log10().mean(dim=0)
        color, style = STYLES[kind]
        ax.plot(
            range(SEQ_LEN),
            (10**mean).tolist(),
            style,
            color=color,
            label=LABELS[kind],
        )
    ax.set_yscale("log")
    ax.set_xlabel("末尾からの距離（トークン数）")
    ax.set_ylabel("勾配のノルム（対数目盛）")
    ax.set_ylim(1e-40, 1e2)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
