"""第15章: 文字単位の言語モデルを、指標を記録しながら学習する。

tinyshakespeare（data/ に同梱）を 1 文字 1 トークンにし、小さな GPT に
次の文字を当てさせる。学習は Trainer の ``train_step`` を 1 回ずつ
呼び、そのたびに学習の損失・学習率・勾配ノルムを、``eval_interval``
ごとに検証の損失を、1 行 1 ステップの JSON Lines に書く。層ごとの
勾配ノルムは GradNormMonitor が集める。

第15章の失敗の実験は、どれもこの ``RunConfig`` の 1 か所を変えて
起こす（学習率、因果マスク、データの量、モデルの大きさ）。
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from easy_transformer.attention import MultiHeadAttention
from easy_transformer.data import data_path
from easy_transformer.debug import GradNormMonitor
from easy_transformer.gpt import GPT, GPTConfig
from easy_transformer.training import TrainConfig, Trainer, append_metrics


@dataclass
class RunConfig:
    """1 回の学習の設定。既定値は CPU で 1 分ほどの「正常な」学習。"""

    n_layers: int = 2
    n_heads: int = 4
    d_model: int = 64
    block_size: int = 32
    batch_size: int = 16
    dropout: float = 0.0
    lr: float = 3e-3  # 学習率の最大値
    min_lr: float = 3e-4  # コサインで下げた行き着く先
    warmup_steps: int = 50
    grad_clip: float = 1.0  # 0 ならクリップしない
    max_steps: int = 400
    eval_interval: int = 50
    eval_batches: int = 10
    train_chars: int | None = None  # 学習に使う先頭の文字数
    causal: bool = True  # False にすると因果マスクを外す（バグの再現）
    seed: int = 0


@dataclass
class Corpus:
    """文字の語彙と、学習・検証に分けた ID の列。"""

    chars: list[str]
    train: Tensor
    val: Tensor

    def encode(self, text: str) -> Tensor:
        index = {c: i for i, c in enumerate(self.chars)}
        return torch.tensor([index[c] for c in text])

    def decode(self, ids: Tensor) -> str:
        return "".join(self.chars[i] for i in ids.tolist())


def load_corpus(train_chars: int | None = None) -> Corpus:
    """先頭の 9 割を学習、残りの 1 割を検証に使う。"""
    text = data_path("tinyshakespeare/input.txt").read_text("utf-8")
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([index[c] for c in text])
    cut = int(0.9 * len(ids))
    train = ids[:cut] if train_chars is None else ids[:train_chars]
    return Corpus(chars, train, ids[cut:])


def windows(ids: Tensor, block_size: int, batch_size: int) -> Any:
    """呼ぶたびにランダムな位置の (入力, 1 文字ずらした正解) を返す。"""

    def get_batch() -> tuple[Tensor, Tensor]:
        starts = torch.randint(len(ids) - block_size, (batch_size,))
        x = torch.stack([ids[s : s + block_size] for s in starts])
        y = torch.stack([ids[s + 1 : s + 1 + block_size] for s in starts])
        return x, y

    return get_batch


def lm_loss(model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
    """各位置で次の文字を当てる交差エントロピー（平均）。"""
    x, y = batch
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())


def make_model(cfg: RunConfig, vocab_size: int) -> GPT:
    torch.manual_seed(cfg.seed)
    model = GPT(
        GPTConfig(
            vocab_size=vocab_size,
            block_size=cfg.block_size,
            n_layers=cfg.n_layers,
            n_heads=cfg.n_heads,
            d_model=cfg.d_model,
            dropout=cfg.dropout,
        )
    )
    for module in model.modules():
        if isinstance(module, MultiHeadAttention):
            module.causal = cfg.causal  # 偽なら因果マスクを足さない
    return model


@dataclass
class RunResult:
    model: GPT
    corpus: Corpus
    records: list[dict[str, Any]]  # JSON Lines に書いたのと同じ記録
    layer_norms: dict[str, list[float]]  # 層ごとの勾配ノルムの推移


def train_monitored(
    cfg: RunConfig, metrics_path: str | Path | None = None
) -> RunResult:
    """``cfg`` で学習し、毎ステップの指標を記録する。"""
    corpus = load_corpus(cfg.train_chars)
    model = make_model(cfg, len(corpus.chars))
    train_cfg = TrainConfig(
        lr=cfg.lr,
        min_lr=cfg.min_lr,
        warmup_steps=cfg.warmup_steps,
        max_steps=cfg.max_steps,
        grad_clip=cfg.grad_clip,
        eval_batches=cfg.eval_batches,
        seed=cfg.seed,
        device="cpu",
        progress=False,
    )
    trainer = Trainer(
        model,
        train_cfg,
        windows(corpus.train, cfg.block_size, cfg.batch_size),
        lm_loss,
        val_data=windows(corpus.val, cfg.block_size, cfg.batch_size),
    )
    monitor = GradNormMonitor(model)
    if metrics_path is not None:
        Path(metrics_path).unlink(missing_ok=True)
    records = []
    while trainer.step < cfg.max_steps:
        result = trainer.train_step()
        # 勾配は次の train_step の始めまで残っている。ただし
        # クリップした後の値（クリップは全体に同じ倍率を掛ける）
        monitor.record()
        record: dict[str, Any] = {
            "step": trainer.step,
            "train_loss": result.loss.item(),
            "lr": result.lr,
            "grad_norm": result.grad_norm.item(),
        }
        if trainer.step % cfg.eval_interval == 0:
            record.update(trainer.evaluate())
        records.append(record)
        if metrics_path is not None:
            append_metrics(metrics_path, record)
        if not math.isfinite(record["train_loss"]):
            break  # NaN になったら、それ以上は学習しても意味がない
    return RunResult(model, corpus, records, monitor.layer_norms(depth=2))
