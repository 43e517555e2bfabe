"""実験（seq2seq_experiment と lm_experiment）に共通の小さな部品。

学習の設定（TrainConfig）の組み立て、時間の計測、結果の保存を
1 か所に置く。本文からは直接使わない。
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Protocol, TypeAlias

from torch import nn

from easy_transformer.gpt import GPT
from easy_transformer.model_io import MODEL_FILE, save_model
from easy_transformer.tokenizer import Tokenizer
from easy_transformer.training import TrainConfig, Trainer, read_metrics
from easy_transformer.transformer import Transformer

PathLike: TypeAlias = str | os.PathLike[str]

RESULT_FILE = "result.json"
METRICS_FILE = "metrics.jsonl"
# 学習の途中経過（再開に使う Trainer のチェックポイント）
CHECKPOINT_FILE = "checkpoint.pt"


class Schedule(Protocol):
    """実験の設定のうち TrainConfig に写す項目（どちらの実験も持つ）。"""

    lr: float
    min_lr: float
    warmup_steps: int
    max_steps: int
    weight_decay: float
    eval_interval: int
    eval_batches: int


def make_train_config(
    cfg: Schedule,
    *,
    betas: tuple[float, float],
    seed: int,
    device: str,
    progress: bool,
    out_dir: PathLike | None,
    resume: bool = False,
    grad_clip: float = 1.0,
) -> TrainConfig:
    """実験の設定から Trainer の設定を作る。

    out_dir を渡すと、指標（metrics.jsonl）と学習の途中経過
    （checkpoint.pt）をそこに書く。resume=True なら、途中経過が
    あればそこから続け、False なら最初から学習して上書きする。
    """
    out = None if out_dir is None else Path(out_dir)
    return TrainConfig(
        lr=cfg.lr,
        min_lr=cfg.min_lr,
        weight_decay=cfg.weight_decay,
        betas=betas,
        warmup_steps=cfg.warmup_steps,
        max_steps=cfg.max_steps,
        grad_clip=grad_clip,
        eval_interval=cfg.eval_interval,
        eval_batches=cfg.eval_batches,
        log_interval=min(10, cfg.max_steps),
        metrics_path=None if out is None else os.fspath(out / METRICS_FILE),
        checkpoint_path=(
            None if out is None else os.fspath(out / CHECKPOINT_FILE)
        ),
        # 評価のたびに途中経過を保存する（止まっても、そこから続けられる）
        checkpoint_interval=cfg.eval_interval,
        resume=resume,
        seed=seed,
        device=device,
        progress=progress,
    )


def timed_train(
    trainer: Trainer,
) -> tuple[list[dict[str, Any]], float, float]:
    """学習して (記録, 壁時計の秒, このプロセスの CPU 秒) を返す。

    指標のファイルがあれば、記録はそこから読む（再開したときも、
    最初のステップからの記録になる）。秒はこの呼び出しの分だけ。
    """
    wall, cpu = time.perf_counter(), time.process_time()
    history = trainer.train()
    seconds = time.perf_counter() - wall, time.process_time() - cpu
    path = trainer.config.metrics_path
    if path is not None and Path(path).exists():
        history = read_metrics(path)
    return history, *seconds


def count_params(model: nn.Module) -> int:
    # 共有した重み（埋め込みと出力層）は 1 度だけ数える
    return sum(p.numel() for p in model.parameters())


def last_value(history: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in history if key in r]
    return float(values[-1]) if values else None


def result_dict(result: Any, skip: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(result):
        if f.name in skip:
            continue
        value = getattr(result, f.name)
        out[f.name] = asdict(value) if f.name == "config" else value
    return out


def save_result(
    out_dir: PathLike,
    result: dict[str, Any],
    model: Transformer | GPT,
    codec: Tokenizer,
) -> None:
    """結果の全体を result.json に、要約をモデルと一緒に model.pt に書く。

    学習曲線（history）と例（examples・samples）は大きいので、
    model.pt の要約には入れない。
    """
    out = Path(out_dir)
    write_json(out / RESULT_FILE, result)
    summary = {
        k: v
        for k, v in result.items()
        if k not in ("history", "examples", "samples")
    }
    save_model(out / MODEL_FILE, model, codec, meta=summary)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    path.write_text(text + "\n", encoding="utf-8")
