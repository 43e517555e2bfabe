"""GPT の学習ステップの速さを、nn.TransformerEncoder で作った同じ形と比べる。

easy_transformer の GPT（高速経路の注意 F.scaled_dot_product_attention）と、
同じ層数・次元・ヘッド数の nn.TransformerEncoder（因果マスク、
norm_first=True）に同じ埋め込みと出力層を付けたモデルで、学習の 1 ステップ
（forward + backward + optimizer）にかかる時間を測る。

時間はマシンの混み具合で大きく揺れるので、2 つのモデルを交互に測り、
回ごとの比の中央値を取る。目標は GPT の速さが比較対象の 0.9 倍以上。

    .venv/bin/python benchmarks/bench_attention.py

結果は `benchmarks/results/attention.json` に書く。
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from easy_transformer.gpt import GPT, GPTConfig

RESULTS = Path(__file__).resolve().parent / "results" / "attention.json"


class TorchGPT(nn.Module):
    """nn.TransformerEncoder に GPT と同じ埋め込みと出力層を付けたもの。"""

    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        self.pos_emb = nn.Embedding(c.block_size, c.d_model)
        layer = nn.TransformerEncoderLayer(
            c.d_model,
            c.n_heads,
            4 * c.d_model,
            dropout=c.dropout,
            activation=lambda x: F.gelu(x, approximate="tanh"),
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, c.n_layers, enable_nested_tensor=False
        )
        self.norm = nn.LayerNorm(c.d_model)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight

    def forward(self, ids: Tensor) -> Tensor:
        seq = ids.size(1)
        pos = torch.arange(seq, device=ids.device)
        x = self.tok_emb(ids) + self.pos_emb(pos)
        mask = nn.Transformer.generate_square_subsequent_mask(seq)
        x = self.encoder(x, mask=mask, is_causal=True)
        logits: Tensor = self.lm_head(self.norm(x))
        return logits


def make_step(model: nn.Module, ids: Tensor) -> Callable[[], None]:
    """次トークン予測の学習を 1 ステップ進める関数を返す。"""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = ids[:, :-1], ids[:, 1:]

    def step() -> None:
        logits = model(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def time_steps(step: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    config = GPTConfig(
        vocab_size=2000,
        block_size=128,
        n_layers=4,
        n_heads=4,
        d_model=128,
        dropout=0.0,
    )
    torch.manual_seed(0)
    models = {"easy_transformer.GPT": GPT(config), "nn.TransformerEncoder": TorchGPT(config)}
    ids = torch.randint(
        0, config.vocab_size, (args.batch, config.block_size + 1)
    )
    steps = {name: make_step(m.train(), ids) for name, m in models.items()}
    for step in steps.values():  # 初回のメモリ確保などを測らない
        time_steps(step, 2)

    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(args.rounds):
        # 順番の有利不利が出ないよう、回ごとに測る順を入れ替える
        for name in names if r % 2 == 0 else reversed(names):
            times[name].append(time_steps(steps[name], args.steps))
    ours, ref = names
    ratios = [b / a for a, b in zip(times[ours], times[ref], strict=True)]
    ratio = statistics.median(ratios)

    result = {
        "description": "学習 1 ステップの速さの比（GPT / nn.TransformerEncoder）",
        "config": vars(config) | {"batch": args.batch},
        "seconds_per_step_median": {
            name: statistics.median(t) for name, t in times.items()
        },
        "ratios_per_round": ratios,
        "speed_ratio_median": ratio,
        "target": 0.9,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=2))

    for name, t in result["seconds_per_step_median"].items():  # type: ignore[attr-defined]
        print(f"{name:24s} {1000 * t:8.1f} ms/ステップ")
    print(f"速さの比 GPT / nn.TransformerEncoder: {ratio:.2f}（目標 0.9 以上）")
    print(f"回ごとの比: {', '.join(f'{x:.2f}' for x in ratios)}")


if __name__ == "__main__":
    main()
