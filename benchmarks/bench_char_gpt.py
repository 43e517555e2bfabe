"""文字単位 GPT の学習の速さを、torch.nn.TransformerEncoder と比べる（CPU）。

本書の GPT（easy_transformer.gpt）と、同じ大きさのモデルを PyTorch の
nn.TransformerEncoder（因果マスク付き、Pre-LN、GELU）で組んだもの
を、同じバッチ・同じ AdamW で学習し、1 秒あたりに学習したトークンの数
（tokens/s）と、その比（本書 / PyTorch）を出す。大きさは
bench_shakespeare.py と同じ（4 層・4 ヘッド・128 次元・ブロック長 64・
バッチ 12・語彙 65）。

2 つを交互に何回か測り、それぞれの中央値を比べる。ほかのプロセスと
CPU を分け合っていても、同じ実行の中で交互に測れば、比はあまり
揺れない。

    .venv/bin/python benchmarks/bench_char_gpt.py

結果は `benchmarks/results/char_gpt.json` に書く。
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import environment, write_json
from torch import Tensor, nn

from easy_transformer.gpt import GPT, GPTConfig

RESULTS = Path(__file__).resolve().parent / "results" / "char_gpt.json"
VOCAB, BLOCK, BATCH = 65, 64, 12
LAYERS, HEADS, D_MODEL = 4, 4, 128


class TorchGPT(nn.Module):
    """nn.TransformerEncoder で組んだ、GPT と同じ形のモデル。"""

    def __init__(self) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(VOCAB, D_MODEL)
        self.pos_emb = nn.Embedding(BLOCK, D_MODEL)
        layer = nn.TransformerEncoderLayer(
            D_MODEL,
            HEADS,
            4 * D_MODEL,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, LAYERS, enable_nested_tensor=False
        )
        # Pre-LN では最後の層の出力が正規化を通らないので、ここで通す
        self.norm = nn.LayerNorm(D_MODEL)
        self.lm_head = nn.Linear(D_MODEL, VOCAB, bias=False)
        self.lm_head.weight = self.tok_emb.weight
        self.register_buffer(
            "mask", nn.Transformer.generate_square_subsequent_mask(BLOCK)
        )

    def forward(self, ids: Tensor) -> Tensor:
        pos = torch.arange(ids.size(1), device=ids.device)
        x = self.tok_emb(ids) + self.pos_emb(pos)
        t = ids.size(1)
        x = self.encoder(x, mask=self.mask[:t, :t], is_causal=True)
        logits: Tensor = self.lm_head(self.norm(x))
        return logits


def make_ours() -> nn.Module:
    config = GPTConfig(
        vocab_size=VOCAB,
        block_size=BLOCK,
        n_layers=LAYERS,
        n_heads=HEADS,
        d_model=D_MODEL,
        dropout=0.0,
    )
    return GPT(config)


def train_tokens_per_sec(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: list[tuple[Tensor, Tensor]],
) -> float:
    """batches で 1 回ずつ更新し、1 秒あたりのトークン数を返す。"""
    model.train()
    start = time.perf_counter()
    for x, y in batches:
        logits = model(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    seconds = time.perf_counter() - start
    return len(batches) * BATCH * BLOCK / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    models = {"ours": make_ours(), "torch": TorchGPT()}
    n_params = {
        name: sum(p.numel() for p in m.parameters())
        for name, m in models.items()
    }
    optimizers = {
        name: torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.99))
        for name, m in models.items()
    }
    data = torch.randint(VOCAB, (args.steps, BATCH, BLOCK + 1))
    batches = [(b[:, :-1], b[:, 1:]) for b in data]
    # 初回の準備（メモリの確保など）を測らない
    for name, model in models.items():
        train_tokens_per_sec(model, optimizers[name], batches[:3])

    speeds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            speeds[name].append(
                train_tokens_per_sec(model, optimizers[name], batches)
            )
    median = {name: statistics.median(v) for name, v in speeds.items()}
    ratio = median["ours"] / median["torch"]
    result = {
        "description": "文字単位 GPT の学習の速さ（tokens/s）。本書の GPT と"
        " nn.TransformerEncoder（因果マスク）で組んだ同じ大きさのモデル",
        "config": {
            "vocab_size": VOCAB,
            "block_size": BLOCK,
            "batch_size": BATCH,
            "n_layers": LAYERS,
            "n_heads": HEADS,
            "d_model": D_MODEL,
            "d_ff": 4 * D_MODEL,
            "dropout": 0.0,
            "steps_per_round": args.steps,
            "rounds": args.rounds,
        },
        "n_params": n_params,
        "tokens_per_sec": speeds,
        "median_tokens_per_sec": median,
        "ratio_ours_over_torch": ratio,
        "environment": {**environment(), "load_average": os.getloadavg()},
    }
    write_json(RESULTS, result)
    print(
        f"本書 {median['ours']:.0f} tokens/s、PyTorch "
        f"{median['torch']:.0f} tokens/s、比 {ratio:.2f}"
        f"（パラメータ {n_params}）"
    )


if __name__ == "__main__":
    main()
