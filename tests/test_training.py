"""training（Trainer とその部品）のテスト。

モデルは小さな文字 bigram 言語モデル（埋め込み → LayerNorm → 線形層。
tests/helpers.py）。途中で kill して再開するテストでは、このファイル
自身を学習スクリプトとして別プロセスで起動する（末尾の ``main``）。
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import helpers
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from easy_transformer.checkpoint import CheckpointError, load_checkpoint
from easy_transformer.training import (
    BatchStream,
    TrainConfig,
    Trainer,
    append_metrics,
    count_tokens,
    isolated_rng,
    make_dataloader,
    make_optimizer,
    move_to,
    param_groups,
    progress_disabled,
    read_metrics,
    seed_everything,
    select_device,
    truncate_metrics,
    use_bf16,
    warmup_cosine_lr,
)

TEXT = (
    "the quick brown fox jumps over the lazy dog. "
    "a compiler turns source text into tokens, trees and code. "
) * 4
VOCAB = sorted(set(TEXT))
IDS = torch.tensor([VOCAB.index(c) for c in TEXT])
SEQ_LEN = 8


def bigram(
    dim: int = 16, dropout: float = 0.1, tie: bool = False
) -> helpers.Bigram:
    """helpers.Bigram を、このファイルの語彙とドロップアウト 0.1 で作る。"""
    return helpers.Bigram(len(VOCAB), dim, dropout, tie)


def lm_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    x, y = batch
    logits = model(x)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())


def get_batch(batch_size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """乱数で文の切れ端を切り出す。

    Python・NumPy の乱数を半分ずつ使うのは、再開のテストでどちらの
    乱数の状態も戻っていることを確かめるため（torch の乱数はドロップ
    アウトが使う）。
    """
    high = len(IDS) - SEQ_LEN - 1
    starts = [random.randrange(high) for _ in range(batch_size // 2)]
    starts += np.random.randint(
        high, size=batch_size - len(starts)
    ).tolist()
    x = torch.stack([IDS[s : s + SEQ_LEN] for s in starts])
    y = torch.stack([IDS[s + 1 : s + SEQ_LEN + 1] for s in starts])
    return x, y


def windows() -> TensorDataset:
    """重ならない切れ端を並べたデータセット（DataLoader 用）。"""
    return helpers.char_windows(IDS, SEQ_LEN)


def small_config(tmp_path: Path | None = None, **kw: Any) -> TrainConfig:
    base: dict[str, Any] = dict(
        lr=1e-2,
        min_lr=1e-3,
        warmup_steps=3,
        max_steps=20,
        eval_interval=0,
        log_interval=1,
        device="cpu",
        progress=False,
    )
    if tmp_path is not None:
        base.update(
            metrics_path=str(tmp_path / "metrics.jsonl"),
            checkpoint_path=str(tmp_path / "ckpt.pt"),
        )
    base.update(kw)
    return TrainConfig(**base)


# ---------------------------------------------------------------------
# 学習率のスケジュール
# ---------------------------------------------------------------------

SCHED: dict[str, Any] = dict(
    max_lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110
)


def test_warmup_is_linear_and_starts_above_zero() -> None:
    lrs = [warmup_cosine_lr(s, **SCHED) for s in range(10)]
    assert lrs == pytest.approx([(s + 1) / 10 for s in range(10)])


def test_cosine_decay_values() -> None:
    lr = [warmup_cosine_lr(s, **SCHED) for s in range(200)]
    assert lr[10] == pytest.approx(1.0)  # ウォームアップの到達点
    assert lr[60] == pytest.approx((1.0 + 0.1) / 2)  # 減衰の半ば
    # 4 分の 1 の地点: min + (max - min)(1 + cos(π/4)) / 2
    quarter = 0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2
    assert lr[35] == pytest.approx(quarter)
    assert lr[110] == pytest.approx(0.1)
    assert lr[150] == pytest.approx(0.1)  # max_steps より後は最小値のまま
    decay = lr[10:111]
    assert all(a >= b for a, b in itertools.pairwise(decay))


def test_warmup_zero_starts_at_max() -> None:
    sched = {**SCHED, "warmup_steps": 0}
    assert warmup_cosine_lr(0, **sched) == pytest.approx(1.0)


def test_trainer_follows_the_schedule() -> None:
    """接続のテスト: Trainer が warmup_cosine_lr の値を使っていること。

    期待値を同じ関数で作るが、その関数の値は上のテストで式から独立に
    確かめてある。
    """
    cfg = small_config(max_steps=12)
    trainer = Trainer(bigram(dropout=0.0), cfg, get_batch, lm_loss)
    used = [trainer.train_step().lr for _ in range(12)]
    expected = [
        warmup_cosine_lr(
            s,
            max_lr=cfg.lr,
            min_lr=cfg.min_lr,
            warmup_steps=cfg.warmup_steps,
            max_steps=cfg.max_steps,
        )
        for s in range(12)
    ]
    assert used == pytest.approx(expected)


# ---------------------------------------------------------------------
# 重み減衰のグループ分け
# ---------------------------------------------------------------------


def test_weight_decay_groups() -> None:
    model = bigram()
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0
    ids = {name: id(p) for name, p in model.named_parameters()}
    assert {id(p) for p in decay["params"]} == {ids["head.weight"]}
    assert {id(p) for p in no_decay["params"]} == {
        ids["emb.weight"],
        ids["norm.weight"],
        ids["norm.bias"],
        ids["head.bias"],
    }


def test_tied_weights_counted_once_as_embedding() -> None:
    model = bigram(tie=True)
    decay, no_decay = param_groups(model, 0.1)
    assert decay["params"] == []
    assert sum(p is model.emb.weight for p in no_decay["params"]) == 1
    # AdamW は同じパラメータが 2 度現れると例外を出す
    make_optimizer(model, small_config())


def test_frozen_parameters_are_left_out() -> None:
    model = bigram()
    model.emb.weight.requires_grad_(False)
    groups = param_groups(model, 0.1)
    assert all(
        p is not model.emb.weight for g in groups for p in g["params"]
    )


# ---------------------------------------------------------------------
# 勾配累積・クリッピング
# ---------------------------------------------------------------------


def one_step(
    accum: int, batches: list[Any], grad_clip: float = 0.0
) -> nn.Module:
    seed_everything(0)
    model = bigram(dropout=0.0)
    cfg = small_config(grad_accum_steps=accum, grad_clip=grad_clip)
    Trainer(model, cfg, batches, lm_loss).train_step()
    return model


@pytest.mark.parametrize("grad_clip", [0.0, 0.5])
def test_grad_accumulation_equals_big_batch(grad_clip: float) -> None:
    seed_everything(1)
    x, y = get_batch(batch_size=12)
    # 4 個ずつ 3 回累積 ＝ 12 個で 1 回
    small = [(x[i : i + 4], y[i : i + 4]) for i in range(0, 12, 4)]
    a = one_step(3, small, grad_clip)
    b = one_step(1, [(x, y)], grad_clip)
    for (name, pa), pb in zip(
        a.named_parameters(), b.parameters(), strict=True
    ):
        assert pa.grad is not None and pb.grad is not None
        torch.testing.assert_close(pa.grad, pb.grad, msg=name)
        torch.testing.assert_close(pa, pb, msg=name)


def test_grad_clipping_limits_the_norm() -> None:
    seed_everything(0)
    model = bigram(dropout=0.0)
    trainer = Trainer(
        model, small_config(grad_clip=1e-3), get_batch, lm_loss
    )
    result = trainer.train_step()
    assert result.grad_norm > 1e-3  # 返すのはクリップ前のノルム
    clipped = torch.stack(
        [p.grad.norm() for p in model.parameters() if p.grad is not None]
    ).norm()
    assert clipped == pytest.approx(1e-3, rel=1e-4)


# ---------------------------------------------------------------------
# 評価ループ
# ---------------------------------------------------------------------


def test_evaluate_uses_eval_mode_and_no_grad() -> None:
    seen: list[tuple[bool, bool]] = []

    def probe(model: nn.Module, batch: Any) -> torch.Tensor:
        seen.append((model.training, torch.is_grad_enabled()))
        return lm_loss(model, batch)

    model = bigram()
    val = [get_batch() for _ in range(3)]
    trainer = Trainer(
        model,
        small_config(eval_batches=2),
        get_batch,
        probe,
        val_data=val,
        eval_fn=lambda m: {"training": float(m.training)},
    )
    result = trainer.evaluate()
    assert seen == [(False, False)] * 2  # eval_batches 個だけ
    assert result["training"] == 0.0
    assert model.training  # 元に戻っている
    model.eval()
    trainer.evaluate()
    assert not model.training  # 元が eval なら eval のまま


def test_evaluate_does_not_disturb_training_randomness() -> None:
    trainer = Trainer(
        bigram(), small_config(), get_batch, lm_loss, val_data=get_batch
    )
    first = trainer.evaluate()["val_loss"]
    seed_everything(5)
    expected = (random.random(), np.random.rand(), torch.rand(1))
    seed_everything(5)
    # 評価は毎回同じバッチを使い、外の乱数の流れを変えない
    assert trainer.evaluate()["val_loss"] == first
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected


# ---------------------------------------------------------------------
# 乱数・デバイス・進捗バー
# ---------------------------------------------------------------------


def test_seed_everything_repeats_all_generators() -> None:
    def draw() -> tuple[float, float, float]:
        return (
            random.random(),
            float(np.random.rand()),
            torch.rand(1).item(),
        )

    seed_everything(123)
    a = draw()
    seed_everything(123)
    assert draw() == a


def test_mixed_precision_is_automatic_by_default() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert TrainConfig().mixed_precision is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 自動と False では警告しない
        assert use_bf16(None, cpu) is False
        assert use_bf16(False, cpu) is False
        assert use_bf16(False, cuda) is False


def test_mixed_precision_on_cuda_depends_on_bf16_support(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert use_bf16(None, cuda) is True
    assert use_bf16(True, cuda) is True
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert use_bf16(None, cuda) is False
    with pytest.warns(UserWarning, match="bf16 の"):
        assert use_bf16(True, cuda) is False


def test_mixed_precision_on_cpu_warns_once_and_trains_in_float32() -> None:
    cfg = small_config(mixed_precision=True, max_steps=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seed_everything(0)
        trainer = Trainer(bigram(), cfg, get_batch, lm_loss)
        history = trainer.train()
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages  # 作るときの 1 回だけ
    assert "mixed_precision=True" in messages[0]
    assert "float32 で学習します" in messages[0]
    assert trainer.bf16 is False
    # 警告のあとの学習は、float32 を指定した学習と同じ
    plain = small_config(mixed_precision=False, max_steps=3)
    seed_everything(0)
    expected = Trainer(bigram(), plain, get_batch, lm_loss).train()
    for a, b in zip(history, expected, strict=True):
        a.pop("tokens_per_sec"), b.pop("tokens_per_sec")
        assert a == b


def test_isolated_rng_restores_state() -> None:
    seed_everything(0)
    with isolated_rng(7):
        inside = torch.rand(1)
    after = torch.rand(1)
    seed_everything(0)
    assert torch.equal(torch.rand(1), after)
    with isolated_rng(7):
        assert torch.equal(torch.rand(1), inside)


def test_select_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("cuda:1") == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert select_device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert select_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto") == torch.device("cuda")


def test_progress_bar_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert progress_disabled() is None  # TTY かどうかは tqdm が決める
    assert progress_disabled(enabled=False) is True
    assert progress_disabled(rank=1) is True
    monkeypatch.setenv("CI", "true")
    assert progress_disabled() is True
    monkeypatch.setenv("CI", "false")
    assert progress_disabled() is None


# ---------------------------------------------------------------------
# データ
# ---------------------------------------------------------------------


def test_make_dataloader_splits_by_rank(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dataset = TensorDataset(torch.arange(32))
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    whole = [b[0] for b in make_dataloader(dataset, 8, seed=3)]
    parts = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        parts.append([b[0] for b in make_dataloader(dataset, 4, seed=3)])
    # 2 ランク × 4 個の i 番目のバッチを合わせると、1 ランク × 8 個の
    # i 番目のバッチと同じサンプルになる
    for big, r0, r1 in zip(whole, *parts, strict=True):
        assert set(torch.cat([r0, r1]).tolist()) == set(big.tolist())


def test_batch_stream_resumes_mid_epoch() -> None:
    loader = make_dataloader(windows(), 4, shuffle=True)
    stream = BatchStream(loader, seed=0)
    seen = [next(stream)[0] for _ in range(len(loader) + 3)]
    restored = BatchStream(loader, seed=0)
    restored.load_state_dict({"epoch": 1, "index": 1})
    assert stream.state_dict() == {"epoch": 1, "index": 3}
    assert torch.equal(next(restored)[0], seen[len(loader) + 1])


def test_batch_stream_shuffles_each_epoch_differently() -> None:
    loader = torch.utils.data.DataLoader(windows(), 4, shuffle=True)
    stream = BatchStream(loader, seed=0)
    n = len(loader)
    first = [next(stream)[0] for _ in range(n)]
    second = [next(stream)[0] for _ in range(n)]
    assert not all(
        torch.equal(a, b) for a, b in zip(first, second, strict=True)
    )


def test_empty_data_is_an_error() -> None:
    with pytest.raises(ValueError, match="1 バッチも"):
        next(BatchStream([], seed=0))


def test_move_to_and_count_tokens() -> None:
    x = torch.zeros(2, 3, dtype=torch.long)
    batch = {"x": x, "y": [x, "label"], "n": 1}
    moved = move_to(batch, torch.device("cpu"))
    assert moved["y"][1] == "label" and moved["n"] == 1
    assert count_tokens(batch) == 6
    assert count_tokens(("text", x)) == 6


# ---------------------------------------------------------------------
# 指標（JSON Lines）
# ---------------------------------------------------------------------


def test_metrics_roundtrip_and_truncate(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    for step in range(1, 6):
        append_metrics(
            path, {"step": step, "train_loss": 1.0 / step, "注": "日本語"}
        )
    records = read_metrics(path)
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["注"] == "日本語"
    truncate_metrics(path, 3)
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3]


def test_read_metrics_skips_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    append_metrics(path, {"step": 1})
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"step": 2, "train_')  # 書いている途中で落ちた
    assert read_metrics(path) == [{"step": 1}]


def test_train_records_metrics(tmp_path: Path) -> None:
    seed_everything(0)
    cfg = small_config(
        tmp_path,
        max_steps=30,
        log_interval=5,
        eval_interval=10,
        checkpoint_interval=0,
    )
    val = [get_batch() for _ in range(4)]
    history = Trainer(
        bigram(), cfg, get_batch, lm_loss, val_data=val
    ).train()
    assert read_metrics(cfg.metrics_path or "") == history
    assert [r["step"] for r in history] == [5, 10, 15, 20, 25, 30]
    assert [r["step"] for r in history if "val_loss" in r] == [10, 20, 30]
    assert set(history[0]) == {
        "step",
        "train_loss",
        "lr",
        "grad_norm",
        "tokens_per_sec",
    }
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_loss"] < math.log(len(VOCAB))
    # 途中で保存しなくても、最後には保存する
    assert load_checkpoint(cfg.checkpoint_path or "")["step"] == 30


# ---------------------------------------------------------------------
# チェックポイントからの再開
# ---------------------------------------------------------------------


def test_resume_in_process_matches(tmp_path: Path) -> None:
    seed_everything(0)
    cfg = small_config(tmp_path, max_steps=10)
    Trainer(bigram(), cfg, get_batch, lm_loss).train()
    first = torch.load(tmp_path / "ckpt.pt", weights_only=True)["model"]
    # 同じ設定で作り直すと、最後のチェックポイントから（何もせずに）戻る
    model = bigram()
    trainer = Trainer(model, cfg, get_batch, lm_loss)
    assert trainer.train() == []
    assert trainer.step == 10
    for k, v in model.state_dict().items():
        assert torch.equal(v, first[k])


def test_eval_interval_does_not_change_training(tmp_path: Path) -> None:
    """評価は乱数を切り離すので、評価の頻度で学習の結果は変わらない。"""
    finals = []
    for interval in (0, 3):
        seed_everything(0)
        model = bigram()
        cfg = small_config(max_steps=8, eval_interval=interval)
        Trainer(model, cfg, get_batch, lm_loss, val_data=get_batch).train()
        finals.append(model.state_dict())
    assert all(torch.equal(finals[0][k], finals[1][k]) for k in finals[0])


def test_resume_false_starts_over(tmp_path: Path) -> None:
    Trainer(
        bigram(), small_config(tmp_path, max_steps=4), get_batch, lm_loss
    ).train()
    cfg = small_config(tmp_path, max_steps=4, resume=False)
    history = Trainer(bigram(), cfg, get_batch, lm_loss).train()
    assert [r["step"] for r in history] == [1, 2, 3, 4]
    # 指標のファイルも前の実行の行を残さない
    assert read_metrics(tmp_path / "metrics.jsonl") == history


def test_resume_warns_when_config_changed(tmp_path: Path) -> None:
    cfg = small_config(tmp_path, max_steps=4)
    Trainer(bigram(), cfg, get_batch, lm_loss).train()
    changed = small_config(tmp_path, max_steps=6, lr=5e-3)
    with pytest.warns(UserWarning, match="lr: 0.01 → 0.005"):
        Trainer(bigram(), changed, get_batch, lm_loss).train()


def test_load_into_a_different_model_is_explained(tmp_path: Path) -> None:
    cfg = small_config(tmp_path, max_steps=2)
    Trainer(bigram(), cfg, get_batch, lm_loss).train()
    with pytest.raises(CheckpointError, match="同じ設定でモデルを"):
        Trainer(bigram(dim=8), cfg, get_batch, lm_loss).train()


def run_script(
    out: Path,
    data: str,
    kill_at: int | None = None,
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, __file__, "--out", str(out), "--data", data]
    if kill_at is not None:
        cmd += ["--kill-at", str(kill_at)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.skipif(
    not hasattr(signal, "SIGKILL"), reason="SIGKILL が無い OS"
)
@pytest.mark.parametrize("data", ["function", "loader"])
def test_kill_and_resume_matches_uninterrupted(
    tmp_path: Path, data: str
) -> None:
    """SIGKILL で落としても、失うのは最後のチェックポイントより後だけ。"""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    crashed = run_script(killed, data, kill_at=KILL_AT)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    # 落ちた時点: 指標は KILL_AT まで、チェックポイントはその前のもの
    assert read_metrics(killed / "metrics.jsonl")[-1]["step"] == KILL_AT
    last_saved = KILL_AT // CKPT_INTERVAL * CKPT_INTERVAL
    assert load_checkpoint(killed / "ckpt.pt")["step"] == last_saved

    resumed = run_script(killed, data)
    assert resumed.returncode == 0, resumed.stderr
    # 止めずに学習した結果と比べる。別プロセスの起動は遅いので、
    # こちらはこのプロセスの中で同じ関数を動かす
    threads = torch.get_num_threads()
    try:
        train_script(whole, data)
    finally:
        torch.set_num_threads(threads)

    keys = ("step", "train_loss", "lr", "grad_norm", "val_loss")
    a = [
        {k: r.get(k) for k in keys}
        for r in read_metrics(whole / "metrics.jsonl")
    ]
    b = [
        {k: r.get(k) for k in keys}
        for r in read_metrics(killed / "metrics.jsonl")
    ]
    assert [r["step"] for r in b] == list(range(1, MAX_STEPS + 1))
    assert a == b  # 浮動小数点数までぴったり同じ
    wa = torch.load(whole / "final.pt", weights_only=True)
    wb = torch.load(killed / "final.pt", weights_only=True)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_move_to_and_count_tokens_handle_dataclass_batches() -> None:
    """tasks.Batch のような dataclass のバッチも移せて、トークンを数えられる。"""
    from easy_transformer.tasks import Batch as TaskBatch
    from easy_transformer.training import count_tokens, move_to

    batch = TaskBatch(
        src=torch.ones(2, 5, dtype=torch.long),
        tgt=torch.ones(2, 7, dtype=torch.long),
    )
    moved = move_to(batch, torch.device("cpu"))
    assert isinstance(moved, TaskBatch)
    assert torch.equal(moved.tgt, batch.tgt)
    assert count_tokens(batch) == 10


# ---------------------------------------------------------------------
# 別プロセスで動かす学習スクリプト
# ---------------------------------------------------------------------

MAX_STEPS, CKPT_INTERVAL, KILL_AT = 30, 7, 25


def train_script(
    out: Path,
    data: str,
    kill_at: int | None = None,
) -> None:
    """学習スクリプトの本体。``kill_at`` ステップの後で自分を kill する。"""
    # 1 スレッドにして、どの実行でも同じ順で浮動小数点数を足す
    torch.set_num_threads(1)
    cfg = small_config(
        out,
        max_steps=MAX_STEPS,
        grad_accum_steps=2,
        checkpoint_interval=CKPT_INTERVAL,
        eval_interval=5,
        eval_batches=2,
    )
    seed_everything(cfg.seed)
    model = bigram()
    if data == "function":
        train: Any = get_batch
    else:
        # 1 エポック 12 バッチ。30 ステップ × 2 累積で 5 エポック
        train = make_dataloader(windows(), 4, shuffle=True)
    val = make_dataloader(windows(), 4, shuffle=False)
    trainer: Trainer

    def loss_fn(m: nn.Module, batch: Any) -> torch.Tensor:
        if m.training and trainer.step == kill_at:
            # 後始末をさせずに落とす（電源断やメモリ不足での強制終了）
            os.kill(os.getpid(), signal.SIGKILL)
        return lm_loss(m, batch)

    trainer = Trainer(model, cfg, train, loss_fn, val_data=val)
    trainer.train()
    torch.save(model.state_dict(), out / "final.pt")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", choices=["function", "loader"])
    parser.add_argument("--kill-at", type=int)
    args = parser.parse_args()
    train_script(args.out, args.data, args.kill_at)


if __name__ == "__main__":
    main()
