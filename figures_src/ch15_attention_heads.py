"""第15章: 学習した文字単位の GPT の、層ごと・ヘッドごとの注意の重み。

benchmarks/bench_ch15_failures.py が保存した baseline の重み
（benchmarks/results/ch15_baseline.pt）を読み、1 行の台詞を読ませて
listings/ch15/04_attention.py で重みを取り出し、
easy_transformer.viz.plot_attention_heads で描く。学習はしない。
"""

from __future__ import annotations

import importlib
import sys

import torch
from _figlib import ROOT, FigureWriter, seed_everything

from easy_transformer.viz import plot_attention_heads

TEXT = "ROMEO:\nI will not go."


def main() -> None:
    seed_everything(0)
    torch.set_num_threads(1)
    # リストは dataclass を使うので、_figlib.load_listing（sys.modules に
    # 登録しない）ではなく、パッケージ listings として import する
    sys.path.insert(0, str(ROOT))
    monitor = importlib.import_module("listings.ch15.01_monitor")
    attention = importlib.import_module("listings.ch15.04_attention")
    cfg = monitor.RunConfig()
    chars = monitor.load_corpus().chars
    model = monitor.make_model(cfg, len(chars))
    state = torch.load(
        ROOT / "benchmarks" / "results" / "ch15_baseline.pt",
        weights_only=True,
    )
    model.load_state_dict(state)
    index = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([[index[c] for c in TEXT]])
    writer = FigureWriter(__file__)
    for layer, weights in enumerate(
        attention.attention_weights(model, ids)
    ):
        fig = plot_attention_heads(weights, list(TEXT), ncols=2)
        writer.save(fig, f"layer{layer}")


if __name__ == "__main__":
    main()
