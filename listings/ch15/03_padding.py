"""第15章: パディングを隠さないと、出力がパディングの量で変わる。

数字の列を逆順にする課題（``"3141"`` → ``"1413"``）を、エンコーダ・
デコーダ型の Transformer に学ばせる。長さの違う列を 1 つのバッチに
するために、短い列の後ろを <pad> で埋める（右パディング）。

``mask_padding=False`` にすると、エンコーダの自己注意とデコーダの
クロス注意に、パディングを隠すマスクを渡さない（バグの再現）。
"""

from __future__ import annotations

import random
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from easy_transformer.attention import padding_mask
from easy_transformer.training import TrainConfig, Trainer
from easy_transformer.transformer import Transformer, TransformerConfig

PAD, BOS, EOS = 0, 1, 2
VOCAB_SIZE = 13  # 特殊トークン 3 つと数字 10 個
MAX_LEN = 8


def encode(digits: str) -> list[int]:
    return [3 + int(c) for c in digits]


def decode(ids: Tensor) -> str:
    out = []
    for i in ids.tolist():
        if i == EOS:
            break
        if i >= 3:
            out.append(str(i - 3))
    return "".join(out)


def make_batch(sources: list[str]) -> tuple[Tensor, Tensor]:
    """入力の列と ``<bos> 逆順 <eos>`` を、右を <pad> で埋めてそろえる。"""
    src = [torch.tensor(encode(s)) for s in sources]
    tgt = [torch.tensor([BOS, *encode(s[::-1]), EOS]) for s in sources]
    return (
        pad_sequence(src, batch_first=True, padding_value=PAD),
        pad_sequence(tgt, batch_first=True, padding_value=PAD),
    )


def random_sources(rng: random.Random, n: int) -> list[str]:
    """長さ 1〜MAX_LEN の数字の列を n 本作る。"""
    return [
        "".join(
            rng.choice("0123456789") for _ in range(rng.randint(1, MAX_LEN))
        )
        for _ in range(n)
    ]


def make_model(seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    config = TransformerConfig(
        src_vocab_size=VOCAB_SIZE,
        tgt_vocab_size=VOCAB_SIZE,
        d_model=64,
        n_heads=4,
        n_encoder_layers=2,
        n_decoder_layers=2,
        d_ff=128,
        dropout=0.0,
        max_len=64,
        norm_first=True,
    )
    return Transformer(config)


def source_mask(src: Tensor, mask_padding: bool) -> Tensor | None:
    """パディングを隠すマスク。mask_padding=False ならマスクなし。"""
    return padding_mask(src, PAD) if mask_padding else None


def reverse_loss(
    model: torch.nn.Module,
    batch: tuple[Tensor, Tensor],
    mask_padding: bool = True,
    ignore_pad: bool = True,
) -> Tensor:
    """教師強制の交差エントロピー。

    ignore_pad=False にすると、正解が <pad> の位置も損失に入る。
    """
    src, tgt = batch
    logits = model(src, tgt[:, :-1], source_mask(src, mask_padding))
    return F.cross_entropy(
        logits.flatten(0, 1),
        tgt[:, 1:].flatten(),
        ignore_index=PAD if ignore_pad else -100,
    )


def add_padding(src: Tensor, n: int) -> Tensor:
    """列の後ろに <pad> を n 個足す（中身は変えず、量だけ増やす）。"""
    pads = torch.full((src.size(0), n), PAD, dtype=src.dtype)
    return torch.cat([src, pads], dim=1)


@torch.no_grad()
def padding_effect(
    model: Transformer, src: Tensor, n: int, mask_padding: bool
) -> float:
    """<pad> を n 個足す前後で、本物の位置のエンコーダ出力の最大の差。"""
    model.eval()
    before = model.encode(src, source_mask(src, mask_padding))
    padded = add_padding(src, n)
    after = model.encode(padded, source_mask(padded, mask_padding))
    return float((after[:, : src.size(1)] - before).abs().max())


@torch.no_grad()
def accuracy(
    model: Transformer, sources: list[str], n: int, mask_padding: bool
) -> float:
    """<pad> を n 個足した入力から、逆順を完全に当てた割合。"""
    model.eval()
    src = add_padding(make_batch(sources)[0], n)
    ys = model.greedy_decode(
        src, BOS, EOS, MAX_LEN + 1, source_mask(src, mask_padding)
    )
    hits = [
        decode(y[1:]) == s[::-1] for y, s in zip(ys, sources, strict=True)
    ]
    return sum(hits) / len(hits)


def train_reverse(
    mask_padding: bool, max_steps: int = 600, seed: int = 0
) -> tuple[Transformer, list[dict[str, Any]]]:
    """逆順の課題を学習し、(モデル, Trainer の記録) を返す。"""
    model = make_model(seed)
    rng = random.Random(seed)

    def get_batch() -> tuple[Tensor, Tensor]:
        return make_batch(random_sources(rng, 32))

    def loss_fn(m: torch.nn.Module, batch: Any) -> Tensor:
        return reverse_loss(m, batch, mask_padding)

    cfg = TrainConfig(
        lr=3e-3,
        min_lr=3e-4,
        warmup_steps=50,
        max_steps=max_steps,
        eval_interval=0,
        log_interval=50,
        seed=seed,
        device="cpu",
        progress=False,
    )
    history = Trainer(model, cfg, get_batch, loss_fn).train()
    return model, history
