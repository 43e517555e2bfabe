"""CUDA の経路のテスト（bf16 の autocast、torch.compile、fused AdamW、再開）。

GPU が要るので、`cuda` マーカーを付けて `make test` からは外してある
（pyproject.toml の addopts の ``-m "not cuda"``）。GPU のあるマシンで
``make test-gpu``（``pytest -m cuda``）で実行する。GPU が無ければ、
理由を付けてスキップする。

モデルは本書の小さな GPT。途中で kill して再開するテストでは、この
ファイル自身を学習スクリプトとして別プロセスで起動する（末尾の main）。
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from easy_transformer.attention import MultiHeadAttention
from easy_transformer.gpt import GPT, GPTConfig
from easy_transformer.training import (
    TrainConfig,
    Trainer,
    make_optimizer,
    read_metrics,
    seed_everything,
    use_bf16,
)

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="GPU がありません（torch.cuda.is_available() が False）",
    ),
]

TEXT = "a compiler turns source text into tokens, trees and code. " * 40
VOCAB = sorted(set(TEXT))
IDS = torch.tensor([VOCAB.index(c) for c in TEXT])
BLOCK = 32


def small_gpt(dropout: float = 0.1) -> GPT:
    return GPT(
        GPTConfig(
            vocab_size=len(VOCAB),
            block_size=BLOCK,
            n_layers=2,
            n_heads=4,
            d_model=64,
            dropout=dropout,
        )
    )


def get_batch(batch_size: int = 8) -> tuple[Tensor, Tensor]:
    """torch の乱数で切れ端を切り出す（CPU で作り、Trainer が GPU へ移す）。"""
    starts = torch.randint(len(IDS) - BLOCK - 1, (batch_size,))
    x = torch.stack([IDS[s : s + BLOCK] for s in starts])
    y = torch.stack([IDS[s + 1 : s + BLOCK + 1] for s in starts])
    return x, y


def lm_loss(model: nn.Module, batch: Any) -> Tensor:
    x, y = batch
    logits = model(x)
    return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())


def config(tmp_path: Path | None = None, **kw: Any) -> TrainConfig:
    base: dict[str, Any] = dict(
        lr=3e-3,
        min_lr=3e-4,
        warmup_steps=5,
        max_steps=40,
        eval_interval=0,
        log_interval=1,
        device="cuda",
        progress=False,
    )
    if tmp_path is not None:
        base.update(
            metrics_path=str(tmp_path / "metrics.jsonl"),
            checkpoint_path=str(tmp_path / "ckpt.pt"),
        )
    return TrainConfig(**(base | kw))


def losses(history: list[dict[str, Any]]) -> list[float]:
    return [r["train_loss"] for r in history if "train_loss" in r]


def test_bf16_autocast_is_used_and_training_learns() -> None:
    seed_everything(0)
    model = small_gpt()
    dtypes: list[torch.dtype] = []

    def loss_fn(m: nn.Module, batch: Any) -> Tensor:
        x, y = batch
        logits = m(x)
        dtypes.append(logits.dtype)
        return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())

    trainer = Trainer(model, config(), get_batch, loss_fn)
    assert trainer.bf16  # 既定（自動）で、CUDA なら bf16
    history = trainer.train()
    assert set(dtypes) == {torch.bfloat16}  # 順伝播は bf16 で計算した
    # 重みは float32 のまま（autocast は演算だけを bf16 にする）
    assert all(p.dtype == torch.float32 for p in model.parameters())
    values = losses(history)
    assert all(math.isfinite(v) for v in values)
    assert sum(values[-5:]) / 5 < sum(values[:5]) / 5 - 0.3


def test_bf16_is_close_to_float32() -> None:
    results = {}
    for mixed in [True, False]:
        seed_everything(0)
        trainer = Trainer(
            small_gpt(),
            config(mixed_precision=mixed, max_steps=10),
            get_batch,
            lm_loss,
        )
        results[mixed] = losses(trainer.train())
    # bf16 の仮数部は 8 ビット（相対誤差 2**-8 ≈ 0.4%）。学習の初めの
    # 10 ステップの損失は、数 % の範囲でそろう
    for a, b in zip(results[True], results[False], strict=True):
        assert a == pytest.approx(b, rel=0.05)


def test_fused_adamw_is_used_and_matches_the_unfused_step() -> None:
    seed_everything(0)
    model = small_gpt().cuda()
    reference = small_gpt().cuda()
    reference.load_state_dict(model.state_dict())
    cfg = config()
    fused = make_optimizer(model, cfg, torch.device("cuda"))
    assert fused.defaults["fused"] is True
    plain = make_optimizer(
        reference, cfg, None
    )  # device=None で fused なし
    assert not plain.defaults["fused"]
    for _ in range(3):
        batch = [t.cuda() for t in get_batch()]
        for m, opt in [(model, fused), (reference, plain)]:
            opt.zero_grad()
            lm_loss(m, batch).backward()  # type: ignore[no-untyped-call]
            opt.step()
    for p, q in zip(
        model.parameters(), reference.parameters(), strict=True
    ):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_torch_compile_trains_like_eager() -> None:
    results = {}
    for compiled in [True, False]:
        seed_everything(0)
        # ドロップアウトは 0 にする。コンパイルしたドロップアウトは
        # 乱数の引き方が eager と違い、損失を比べられないため
        trainer = Trainer(
            small_gpt(dropout=0.0),
            config(compile=compiled, mixed_precision=False, max_steps=15),
            get_batch,
            lm_loss,
        )
        results[compiled] = losses(trainer.train())
    # 融合したカーネルは足し算の順が違うので、ぴったりは一致しない
    for a, b in zip(results[True], results[False], strict=True):
        assert a == pytest.approx(b, rel=1e-3)


def test_use_bf16_on_cuda() -> None:
    cuda = torch.device("cuda")
    assert use_bf16(None, cuda) == torch.cuda.is_bf16_supported()
    assert use_bf16(False, cuda) is False


# ---- CUDA での kill と再開 ------------------------------------------

MAX_STEPS, CKPT_INTERVAL, KILL_AT = 30, 7, 25


def run_script(
    out: Path, kill_at: int | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, __file__, "--out", str(out)]
    if kill_at is not None:
        cmd += ["--kill-at", str(kill_at)]
    env = dict(os.environ, CUBLAS_WORKSPACE_CONFIG=":4096:8")
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env=env
    )


@pytest.mark.slow
@pytest.mark.skipif(
    not hasattr(signal, "SIGKILL"), reason="SIGKILL が無い OS"
)
def test_kill_and_resume_on_cuda_matches_uninterrupted(
    tmp_path: Path,
) -> None:
    """bf16・ドロップアウトありで、CUDA の乱数の状態まで戻ること。"""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    crashed = run_script(killed, kill_at=KILL_AT)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    resumed = run_script(killed)
    assert resumed.returncode == 0, resumed.stderr
    done = run_script(whole)
    assert done.returncode == 0, done.stderr

    keys = ("step", "train_loss", "lr", "grad_norm")
    a = [
        {k: r.get(k) for k in keys} for r in read_metrics(whole / "m.jsonl")
    ]
    b = [
        {k: r.get(k) for k in keys}
        for r in read_metrics(killed / "m.jsonl")
    ]
    assert [r["step"] for r in b] == list(range(1, MAX_STEPS + 1))
    # deterministic=True（決定的なアルゴリズムだけ）なので、同じ GPU では
    # 浮動小数点数まで一致するはず。GPU のカーネルの選び方の違いに備え、
    # 許容誤差はごく小さく取る
    for ra, rb in zip(a, b, strict=True):
        for k in keys:
            assert ra[k] == pytest.approx(rb[k], rel=1e-6), (ra, rb)
    wa = torch.load(whole / "final.pt", weights_only=True)
    wb = torch.load(killed / "final.pt", weights_only=True)
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-6, atol=1e-7)


def train_script(out: Path, kill_at: int | None) -> None:
    cfg = config(
        max_steps=MAX_STEPS,
        checkpoint_interval=CKPT_INTERVAL,
        checkpoint_path=str(out / "ckpt.pt"),
        metrics_path=str(out / "m.jsonl"),
        deterministic=True,
    )
    seed_everything(cfg.seed, cfg.deterministic)
    model = small_gpt()
    # 自前の注意（backend="manual"）は行列積と softmax だけなので、
    # deterministic=True で決定的なアルゴリズムがそろう
    for module in model.modules():
        if isinstance(module, MultiHeadAttention):
            module.backend = "manual"
    trainer: Trainer

    def loss_fn(m: nn.Module, batch: Any) -> Tensor:
        if m.training and trainer.step == kill_at:
            torch.cuda.synchronize()
            os.kill(os.getpid(), signal.SIGKILL)
        return lm_loss(m, batch)

    trainer = Trainer(model, cfg, get_batch, loss_fn)
    trainer.train()
    torch.save(model.state_dict(), out / "final.pt")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--kill-at", type=int)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    train_script(args.out, args.kill_at)


if __name__ == "__main__":
    main()
