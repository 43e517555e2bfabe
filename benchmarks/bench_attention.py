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
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import write_json
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
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()

    return step


def time_steps(step: Callable[[], None], n: int) -> tuple[float, float]:
    """1 ステップあたりの (CPU 時間, 経過時間) を秒で返す。"""
    cpu, wall = time.thread_time(), time.perf_counter()
    for _ in range(n):
        step()
    return (time.thread_time() - cpu) / n, (time.perf_counter() - wall) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    # 1 スレッドなら計算はすべてこのスレッドで走るので、スレッドの
    # CPU 時間で測れる。CPU 時間はほかのプロセスとの取り合いで
    # 経過時間ほど揺れない
    torch.set_num_threads(args.threads)

    config = GPTConfig(
        vocab_size=512,
        block_size=128,
        n_layers=4,
        n_heads=4,
        d_model=128,
        dropout=0.0,
    )
    torch.manual_seed(0)
    models = {
        "easy_transformer.GPT": GPT(config),
        "nn.TransformerEncoder": TorchGPT(config),
    }
    ids = torch.randint(
        0, config.vocab_size, (args.batch, config.block_size + 1)
    )
    steps = {name: make_step(m.train(), ids) for name, m in models.items()}
    for step in steps.values():  # 初回のメモリ確保などを測らない
        time_steps(step, 2)

    names = list(steps)
    times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for r in range(args.rounds):
        # 順番の有利不利が出ないよう、回ごとに測る順を入れ替える
        for name in names if r % 2 == 0 else reversed(names):
            times[name].append(time_steps(steps[name], args.steps))
    ours, ref = (times[n] for n in names)
    ratios = {
        kind: [b[i] / a[i] for a, b in zip(ours, ref, strict=True)]
        for i, kind in enumerate(["cpu", "wall"])
    }
    median = {kind: statistics.median(r) for kind, r in ratios.items()}
    ms_per_step = {
        name: {
            kind: 1000 * statistics.median(t[i] for t in times[name])
            for i, kind in enumerate(["cpu", "wall"])
        }
        for name in names
    }

    result = {
        "description": (
            "学習 1 ステップの速さの比"
            "（easy_transformer.GPT / nn.TransformerEncoder）"
        ),
        "config": vars(config) | {"batch": args.batch},
        "ms_per_step_median": ms_per_step,
        "speed_ratio_median": median,
        "ratios_per_round": ratios,
        "target": 0.9,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS, result)

    print(f"{'':24s} {'CPU 時間':>10s} {'経過時間':>10s}（ms/ステップ）")
    for name, ms in ms_per_step.items():
        print(f"{name:24s} {ms['cpu']:10.1f} {ms['wall']:10.1f}")
    print(
        f"速さの比 GPT / nn.TransformerEncoder: CPU 時間で "
        f"{median['cpu']:.2f}、経過時間で {median['wall']:.2f}"
        "（目標 0.9 以上）"
    )


if __name__ == "__main__":
    main()
