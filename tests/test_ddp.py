"""同じ学習スクリプトが torchrun（DDP）でそのまま動くことのテスト。

このファイル自身を学習スクリプトとして、CPU の gloo で 2 プロセス起動
する（``torchrun --nproc-per-node=2``）。確かめること:

- 2 プロセスの重みが、ぴったり一致する（DDP が勾配を平均している）。
- 1 プロセス × 全体のバッチで学習した結果と、誤差の範囲で一致する。
- 指標とチェックポイントを書くのは rank 0 だけ。
- 学習の途中で全プロセスを SIGKILL で落としても、チェックポイントから
  再開すれば、止めずに学習したのとぴったり同じ結果になる（ランクごとの
  乱数の状態とデータの位置が戻る）。
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import helpers
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from easy_transformer.checkpoint import load_checkpoint
from easy_transformer.training import (
    TrainConfig,
    Trainer,
    cleanup_distributed,
    make_dataloader,
    read_metrics,
    seed_everything,
)

TEXT = "a compiler turns source text into tokens, trees and code. " * 7
VOCAB = sorted(set(TEXT))
SEQ_LEN = 8
WORLD_SIZE = 2
BATCH = 4  # 1 プロセスあたり。全体のバッチは WORLD_SIZE 倍
MAX_STEPS, CKPT_INTERVAL = 12, 5
KILL_AT = 8  # 5 ステップ目のチェックポイントの後、10 ステップ目の前で落とす
# 再開のテストはドロップアウトを使う。ランクごとに違う乱数の状態が
# 正しく戻らなければ、再開の後のマスクが変わって結果がずれる
RESUME_DROPOUT = 0.2

# 2 プロセスを起動するので時間がかかる（make test には含める）
pytestmark = pytest.mark.slow


def lm_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())


def windows() -> TensorDataset:
    ids = torch.tensor([VOCAB.index(c) for c in TEXT])
    return helpers.char_windows(ids, SEQ_LEN)


def train(
    out: Path,
    batch_size: int,
    kill_at: int | None = None,
    dropout: float = 0.0,
) -> list[dict[str, Any]]:
    """学習スクリプトの本体。1 プロセスでも torchrun でも同じコード。

    ``kill_at`` を渡すと、そのステップの更新の前に各ランクが自分を
    SIGKILL で落とす（電源断やメモリ不足での強制終了のまね）。
    """
    cfg = TrainConfig(
        lr=1e-2,
        min_lr=1e-3,
        warmup_steps=2,
        max_steps=MAX_STEPS,
        grad_accum_steps=2,
        eval_interval=4,
        eval_batches=2,
        log_interval=1,
        checkpoint_interval=CKPT_INTERVAL,
        checkpoint_path=str(out / "ckpt.pt"),
        metrics_path=str(out / "metrics.jsonl"),
        device="cpu",
        progress=False,
    )
    seed_everything(cfg.seed)
    # 1 プロセスの学習と比べるテストでは、ドロップアウトを使わない。
    # ランクごとに乱数が違い、比べられなくなるため
    model = helpers.Bigram(len(VOCAB), dropout=dropout)
    data = make_dataloader(windows(), batch_size, shuffle=True)
    val = make_dataloader(windows(), batch_size, shuffle=False)

    def loss_fn(m: nn.Module, batch: Any) -> torch.Tensor:
        if m.training and trainer.step == kill_at:
            # 後始末をさせずに落とす
            os.kill(os.getpid(), signal.SIGKILL)
        return lm_loss(m, batch)

    trainer = Trainer(model, cfg, data, loss_fn, val_data=val)
    history = trainer.train()
    rank = trainer.dist.rank
    torch.save(model.state_dict(), out / f"weights{rank}.pt")
    (out / f"history{rank}.json").write_text(json.dumps(history))
    return history


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def launch(
    out: Path, kill_at: int | None = None, dropout: float = 0.0
) -> subprocess.CompletedProcess[str]:
    """torchrun と同じもの（python -m torch.distributed.run）を起動する。"""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        f"--nproc-per-node={WORLD_SIZE}",
        "--master-addr=127.0.0.1",
        f"--master-port={free_port()}",
        __file__,
        "--out",
        str(out),
    ]
    if kill_at is not None:
        cmd += ["--kill-at", str(kill_at)]
    cmd += ["--dropout", str(dropout)]
    env = dict(os.environ)
    if sys.platform == "linux":
        env["GLOO_SOCKET_IFNAME"] = "lo"  # 外のネットワークに出ない
    return subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=300
    )


def launch_completed(out: Path, dropout: float = 0.0) -> None:
    """最後まで学習させる。起動の既知の揺れのときだけ 1 回やり直す。

    ループバックの空いているポートで起動する。free_port() が閉じて
    から torchrun が同じポートを開くまでの間に、ほかのプロセスが
    そのポートを取ることがある（TOCTOU）。そのときだけ別のポートで
    1 回やり直す（ほかの失敗はやり直さずに落とす）。gloo の後始末で
    子プロセスが異常終了する既知の揺れ（下の main の注釈）も、同じく
    1 回だけやり直す。やり直しはチェックポイントから続きを学習する
    （再開が正しいことは test_resume_after_kill_matches_uninterrupted
    が確かめる）。結果のファイルは各テストが確かめるので、やり直しで
    誤りを見逃すことはない。
    """
    done = launch(out, dropout=dropout)
    log = (done.stdout + done.stderr).lower()
    if done.returncode != 0 and (
        "address already in use" in log
        or "terminate called without an active exception" in log
    ):
        done = launch(out, dropout=dropout)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    launch_completed(out)
    return out


def weights(path: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(path, weights_only=True)
    return state


def test_ranks_end_with_identical_weights(ddp_run: Path) -> None:
    w0, w1 = (
        weights(ddp_run / "weights0.pt"),
        weights(ddp_run / "weights1.pt"),
    )
    assert all(torch.equal(w0[k], w1[k]) for k in w0)


def test_matches_single_process_with_the_whole_batch(
    ddp_run: Path, tmp_path: Path
) -> None:
    single = train(tmp_path, BATCH * WORLD_SIZE)
    w1, w2 = (
        weights(tmp_path / "weights0.pt"),
        weights(ddp_run / "weights0.pt"),
    )
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=1e-5)
    # 学習の損失（全ランクの平均）と検証の損失も一致する
    ddp = json.loads((ddp_run / "history0.json").read_text())
    assert [r["step"] for r in ddp] == [r["step"] for r in single]
    for a, b in zip(ddp, single, strict=True):
        for key in ("train_loss", "val_loss", "lr", "grad_norm"):
            assert (key in a) == (key in b)
            if key in a:
                assert a[key] == pytest.approx(b[key], rel=1e-4)


def test_ranks_log_the_same_metrics(ddp_run: Path) -> None:
    h0 = json.loads((ddp_run / "history0.json").read_text())
    h1 = json.loads((ddp_run / "history1.json").read_text())
    for a, b in zip(h0, h1, strict=True):
        a.pop("tokens_per_sec")
        b.pop("tokens_per_sec")
        assert a == b


def test_only_rank0_writes_files(ddp_run: Path) -> None:
    records = read_metrics(ddp_run / "metrics.jsonl")
    steps = [r["step"] for r in records]
    assert steps == list(
        range(1, MAX_STEPS + 1)
    )  # 2 プロセスが書けば重複する
    state = load_checkpoint(ddp_run / "ckpt.pt")
    assert state["step"] == MAX_STEPS
    assert len(state["rng"]) == WORLD_SIZE  # 乱数の状態は全ランクぶん
    # 全体のトークン数で速さを数える
    assert all(r["tokens_per_sec"] > 0 for r in records)


def test_resume_after_kill_matches_uninterrupted(tmp_path: Path) -> None:
    """全ランクを SIGKILL で落としてから再開しても、結果は変わらない。

    ドロップアウトを入れ、ランクごとの乱数の状態・データの位置・
    オプティマイザとスケジューラの状態がすべて戻ることを確かめる。
    """
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    launch_completed(whole, dropout=RESUME_DROPOUT)
    crashed = launch(killed, kill_at=KILL_AT, dropout=RESUME_DROPOUT)
    assert crashed.returncode != 0, crashed.stdout + crashed.stderr
    # 落ちた時点: チェックポイントは KILL_AT より前の最後のもの
    last_saved = KILL_AT // CKPT_INTERVAL * CKPT_INTERVAL
    assert load_checkpoint(killed / "ckpt.pt")["step"] == last_saved
    assert read_metrics(killed / "metrics.jsonl")[-1]["step"] < MAX_STEPS

    launch_completed(killed, dropout=RESUME_DROPOUT)
    # 重みは、止めずに学習したものとランクごとにぴったり同じ
    for rank in range(WORLD_SIZE):
        w1 = weights(whole / f"weights{rank}.pt")
        w2 = weights(killed / f"weights{rank}.pt")
        assert w1.keys() == w2.keys()
        assert all(torch.equal(w1[k], w2[k]) for k in w1)
    # 指標の記録も、重複も欠けもなく同じ（速さを除く）
    keys = ("step", "train_loss", "lr", "grad_norm", "val_loss")
    a, b = (
        [
            {k: r.get(k) for k in keys}
            for r in read_metrics(d / "metrics.jsonl")
        ]
        for d in (whole, killed)
    )
    assert [r["step"] for r in b] == list(range(1, MAX_STEPS + 1))
    assert a == b


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--kill-at", type=int, default=None)
    parser.add_argument("--dropout", type=float, default=0.0)
    args = parser.parse_args()
    try:
        train(args.out, BATCH, args.kill_at, args.dropout)
        # 全ランクが書き終えてから閉じる。先に閉じたランクが接続を切ると、
        # 相手が gloo の後始末の中で異常終了することがある（SIGABRT、
        # "terminate called without an active exception"）
        if torch.distributed.is_initialized():
            torch.distributed.barrier()
    finally:
        cleanup_distributed()


if __name__ == "__main__":
    main()
