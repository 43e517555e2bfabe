"""第20章: 温度・top-k・top-p で、次の文字の分布がどう変わるか。

第20章の文字単位の GPT（benchmarks/bench_ch20_decoding.py が学習して
保存したもの）に本文と同じプロンプトを読ませ、次の文字の分布を
5 つの設定で棒グラフにする。加工はパッケージの関数
（easy_transformer.generation）で行う。
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from _figlib import ROOT, FigureWriter

from easy_transformer.generation import top_k_filter, top_p_filter
from easy_transformer.model_io import load_model

PROMPT = "ROMEO:\nI will "
SHOW = 12  # 元の分布で上位の何文字を並べるか


def main() -> None:
    loaded = load_model(
        ROOT / "benchmarks" / "results" / "ch20_char_gpt.pt"
    )
    model, codec = loaded.model, loaded.codec
    with torch.no_grad():
        logits = model(torch.tensor([codec.encode(PROMPT)]))[0, -1]
    order = logits.argsort(descending=True)[:SHOW]
    # 空白や改行も見えるように repr で書く
    labels = [repr(codec.decode([int(i)]))[1:-1] for i in order]
    settings = [
        ("温度 0.5", logits / 0.5),
        ("温度 1.0（そのまま）", logits),
        ("温度 1.5", logits / 1.5),
        ("top-k（k = 5）", top_k_filter(logits, 5)),
        ("top-p（p = 0.9）", top_p_filter(logits, 0.9)),
    ]
    fig, axes = plt.subplots(
        len(settings), 1, figsize=(6, 7.5), sharex=True, sharey=True
    )
    for ax, (title, z) in zip(axes, settings, strict=True):
        probs = z.softmax(-1)
        nz = probs[probs > 0]
        entropy = float(-(nz * nz.log2()).sum())
        kept = int((probs > 0).sum())
        ax.bar(range(SHOW), probs[order].numpy(), color="#4C72B0")
        ax.set_title(
            f"{title}　エントロピー {entropy:.2f} ビット、候補 {kept} 個",
            fontsize=9,
        )
        ax.set_ylim(0, 0.5)
        ax.grid(axis="y", alpha=0.3)
        ax.set_ylabel("確率", fontsize=8)
    axes[-1].set_xticks(range(SHOW), labels)
    axes[-1].set_xlabel("次の文字（温度 1.0 で確率の高い順）")
    fig.tight_layout()
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
