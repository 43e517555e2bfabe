"""学習: どのモデルにも使える学習ループ（Trainer）と、その部品（第4部）。

Trainer が知っているのは「モデル（nn.Module）」と「バッチから損失を
計算する関数」だけ。GPT でもエンコーダ・デコーダでも、損失の計算の
仕方を関数で渡せば同じループで学習できる。

    cfg = TrainConfig(max_steps=200, checkpoint_path="ckpt.pt")
    trainer = Trainer(model, cfg, get_batch, loss_fn)
    history = trainer.train()

部品は上から順に、設定 → 乱数とデバイス → オプティマイザ →
学習率のスケジュール → データ → 指標の記録 → 分散学習 → Trainer、
と並ぶ。同じスクリプトを ``torchrun --nproc_per_node=2 train.py`` で
起動すれば、そのまま DDP（DistributedDataParallel）で複数プロセスの
学習になる。チェックポイントの読み書きは checkpoint.py にある。
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeAlias

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from easy_transformer.checkpoint import (
    CheckpointError,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)

# バッチはテンソル、またはテンソルのタプル・リスト・辞書（入れ子も可）
Batch: TypeAlias = Any
# (モデル, バッチ) -> 損失（スカラーのテンソル）
LossFn: TypeAlias = Callable[[nn.Module, Batch], torch.Tensor]
# 学習データ: 引数なしで 1 バッチを返す関数か、DataLoader などの反復可能
Data: TypeAlias = Callable[[], Batch] | Iterable[Batch]


@dataclass
class TrainConfig:
    """学習の設定。既定値は小さなモデルを CPU で試す大きさ。"""

    # 最適化（AdamW）と学習率のスケジュール
    lr: float = 1e-3  # 学習率の最大値（ウォームアップの到達点）
    min_lr: float = 1e-4  # コサイン減衰の行き着く先
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 100
    max_steps: int = 1000
    grad_clip: float = 1.0  # 勾配のノルムの上限。0 でクリップしない
    grad_accum_steps: int = 1  # 1 ステップに使うマイクロバッチの数
    # 評価と記録
    eval_interval: int = 100  # 何ステップごとに評価するか。0 で評価しない
    eval_batches: int = 20  # 1 回の評価に使うバッチの数
    log_interval: int = 10  # 何ステップごとに学習の損失を記録するか
    metrics_path: str | None = None  # 指標の JSON Lines ファイル
    # チェックポイント
    checkpoint_interval: int = 100  # 0 で途中では保存しない
    checkpoint_path: str | None = None  # None なら保存しない
    resume: bool = True  # checkpoint_path があればそこから続ける
    # 実行環境
    seed: int = 0
    device: str = "auto"  # "auto"、"cpu"、"cuda"、"cuda:1"、"mps" など
    # bf16 の autocast。None は自動（CUDA なら bf16）。use_bf16 を参照
    mixed_precision: bool | None = None
    compile: bool = False  # torch.compile でモデルをコンパイルする
    deterministic: bool = False  # 決定的なアルゴリズムだけを使う
    progress: bool = True  # 進捗バーを出す（CI や非 TTY では出ない）


# ---------------------------------------------------------------------
# 乱数とデバイス
# ---------------------------------------------------------------------


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Python・NumPy・torch（全デバイス）の乱数の種をまとめて固定する。

    ``deterministic=True`` のときは、実行ごとに結果が揺れ得る
    （速いが非決定的な）GPU のアルゴリズムも禁止する。cuBLAS の設定を
    効かせるため、GPU で計算を始める前に呼ぶこと。
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)  # NumPy の種は 32 ビットまで
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS を決定的にするには、作業領域の大きさの指定が要る
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def select_device(preference: str = "auto") -> torch.device:
    """使うデバイスを決める。"auto" なら CUDA → MPS → CPU の順に探す。"""
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def use_bf16(setting: bool | None, device: torch.device) -> bool:
    """bf16 の autocast を使うかを決める（TrainConfig.mixed_precision）。

    - None（既定）は自動: CUDA で bf16 が使えれば使い、ほかは float32。
    - True は bf16 を求める。CUDA 以外（CPU、MPS）と bf16 の無い古い
      GPU では使わず、float32 のまま学習することを警告する。
    - False は使わない。

    CPU では bf16 の autocast にしない。bf16 の演算を持たない多くの
    CPU では float32 より遅くなり、数値も変わる（この本のテストと計測は
    CPU の float32 で、再開したときのビット単位の一致などを確かめて
    いる）。黙って無視すると「bf16 で学習した」と誤解するので、
    求められたときは警告で知らせる。
    """
    available = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if setting is True and not available:
        warnings.warn(
            f"mixed_precision=True ですが、デバイス {device} では bf16 の "
            "autocast を使わず float32 で学習します（bf16 を使うのは "
            "bf16 に対応した CUDA の GPU だけ）。この警告を消すには "
            "mixed_precision=None（自動）か False にしてください。",
            stacklevel=3,
        )
    return available if setting is not False else False


@contextmanager
def isolated_rng(seed: int) -> Iterator[None]:
    """中では種 ``seed`` の乱数を使い、出るときに元の乱数の状態に戻す。

    評価やデータの並べ替えがこの中で乱数を使っても、学習の乱数の
    流れは変わらない。だから評価の間隔を変えても学習の結果は同じになる。
    """
    saved = get_rng_state()
    seed_everything(seed)
    try:
        yield
    finally:
        set_rng_state(saved)


# ---------------------------------------------------------------------
# オプティマイザ
# ---------------------------------------------------------------------


def param_groups(
    model: nn.Module, weight_decay: float
) -> list[dict[str, Any]]:
    """パラメータを、重み減衰をかけるものとかけないものに分ける。

    重み減衰は「重みを 0 に引き寄せる」正則化で、入力を混ぜ合わせる
    行列（Linear の重みなど 2 次元以上のもの）を小さく保つためのもの。
    次のものにはかけない。

    - バイアスと LayerNorm の重み・バイアス（1 次元）: 出力をずらす・
      拡大するだけで、0 に引き寄せる理由がない。LayerNorm のゲインを
      0 に寄せると、正規化した値を潰す方向に働いてしまう。
    - 埋め込み（nn.Embedding）の重み: 行列は行列だが、1 ステップで勾配が
      来るのはバッチに現れたトークンの行だけ。AdamW の減衰は毎ステップ
      全行にかかるので、まれなトークンの行ほど 0 に潰れてしまう。
      出力層と重みを共有（weight tying）している場合も埋め込みとみなす。
    """
    embedding_params = {
        id(p)
        for m in model.modules()
        if isinstance(m, nn.Embedding)
        for p in m.parameters(recurse=False)
    }
    decay, no_decay = [], []
    # named_parameters は共有されたパラメータを 1 度だけ返す
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.dim() >= 2 and id(p) not in embedding_params:
            decay.append(p)
        else:
            no_decay.append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(
    model: nn.Module,
    config: TrainConfig,
    device: torch.device | None = None,
) -> torch.optim.AdamW:
    """重み減衰を分けた AdamW を作る。CUDA では速い fused 版を使う。"""
    fused = device is not None and device.type == "cuda"
    return torch.optim.AdamW(
        param_groups(model, config.weight_decay),
        lr=config.lr,
        betas=config.betas,
        fused=fused,
    )


# ---------------------------------------------------------------------
# 学習率のスケジュール
# ---------------------------------------------------------------------


def warmup_cosine_lr(
    step: int,
    *,
    max_lr: float,
    min_lr: float,
    warmup_steps: int,
    max_steps: int,
) -> float:
    """``step`` 番目（0 始まり）の更新で使う学習率。

    最初の ``warmup_steps`` 回は 0 から ``max_lr`` まで直線的に上げる。
    学習の始めは重みがでたらめで勾配も荒いので、いきなり大きく動かすと
    発散しやすいからだ。その後は ``max_steps`` でちょうど ``min_lr`` に
    なるようにコサインの形で下げ、以降は ``min_lr`` のまま保つ。
    """
    if step < warmup_steps:
        # step + 1 にするのは、最初の更新の学習率を 0 にしないため
        return max_lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return min_lr
    progress = (step - warmup_steps) / (max_steps - warmup_steps)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (
        max_lr - min_lr
    )


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """``warmup_cosine_lr`` に従うスケジューラを作る。"""

    # LambdaLR は「元の学習率に掛ける倍率」を求めるので、最大値で割る
    def factor(step: int) -> float:
        lr = warmup_cosine_lr(
            step,
            max_lr=config.lr,
            min_lr=config.min_lr,
            warmup_steps=config.warmup_steps,
            max_steps=config.max_steps,
        )
        return lr / config.lr

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ---------------------------------------------------------------------
# データ
# ---------------------------------------------------------------------


def make_dataloader(
    dataset: Dataset[Any],
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    drop_last: bool = True,
    **kwargs: Any,
) -> DataLoader[Any]:
    """分散学習でもそのまま使える DataLoader を作る。

    ``batch_size`` は 1 プロセスあたりの大きさ。torchrun で起動されて
    いれば、DistributedSampler がデータをランクごとに重ならないよう
    分ける。1 プロセスでも同じ仕組み（ランク数 1）を使うので、
    ``drop_last=True`` なら「2 プロセス × 8」と「1 プロセス × 16」は、
    各ステップで同じ 16 個のサンプルを学習する。
    """
    # プロセスグループを作る前でも呼べるように、環境変数から読む
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    sampler: DistributedSampler[Any] = DistributedSampler(
        dataset,
        num_replicas=world_size,
        rank=rank,
        shuffle=shuffle,
        seed=seed,
        drop_last=drop_last,
    )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        **kwargs,
    )


def move_to(batch: Batch, device: torch.device) -> Batch:
    """バッチの中のテンソルをすべて ``device`` に移す（入れ子も）。"""
    if isinstance(batch, torch.Tensor):
        # 固定（pinned）メモリからなら、転送と計算を重ねられる
        return batch.to(device, non_blocking=batch.is_pinned())
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        # tasks.Batch のような dataclass は、欄ごとに移して作り直す
        moved = {
            f.name: move_to(getattr(batch, f.name), device)
            for f in dataclasses.fields(batch)
        }
        return dataclasses.replace(batch, **moved)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(move_to(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


def count_tokens(batch: Batch) -> int:
    """バッチの最初のテンソル（入力とみなす）の要素数を数える。"""
    if isinstance(batch, torch.Tensor):
        return batch.numel()
    if isinstance(batch, dict):
        batch = list(batch.values())
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        batch = [getattr(batch, f.name) for f in dataclasses.fields(batch)]
    if isinstance(batch, (list, tuple)):
        for v in batch:
            n = count_tokens(v)
            if n:
                return n
    return 0


_END = object()  # 反復の終わりを表す目印


class BatchStream:
    """学習データから 1 バッチずつ取り出し、再開のために位置を覚える。

    データが関数なら、呼ぶたびに新しいバッチが返る（乱数で切り出す
    など）。乱数の状態はチェックポイントに入るので、再開しても同じ
    バッチの列になる。

    データが DataLoader などの反復可能なら、エポックと、その中で何個目
    かを覚える。再開するときは、そのエポックの並びを作り直して、使った
    ぶんだけ読み飛ばす。並びを作り直せるように、エポックの始めの
    並べ替えは ``seed + epoch`` を種にした乱数で行う。
    """

    def __init__(self, data: Data, seed: int) -> None:
        self.data = data
        self.seed = seed
        self.epoch = 0
        self.index = 0  # このエポックで取り出したバッチの数
        self._it: Iterator[Batch] | None = None

    def __next__(self) -> Batch:
        if callable(self.data):
            return self.data()
        while True:
            if self._it is None:
                self._it = self._start_epoch()
            batch = next(self._it, _END)
            if batch is not _END:
                self.index += 1
                return batch
            if self.index == 0:
                raise ValueError("学習データが 1 バッチもありません。")
            self.epoch, self.index, self._it = self.epoch + 1, 0, None

    def _start_epoch(self) -> Iterator[Batch]:
        assert not callable(self.data)
        sampler = getattr(self.data, "sampler", None)
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(self.epoch)
        with isolated_rng(self.seed + self.epoch):
            it = iter(self.data)
            # RandomSampler は最初のバッチを取るときに乱数を引くので、
            # 最初の 1 個まではこの中で取り出す
            first = next(it, _END)
        if first is _END:
            return iter(())
        # 再開したときは、このエポックで使い終えたバッチを読み飛ばす
        return itertools.islice(
            itertools.chain([first], it), self.index, None
        )

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.index = state["epoch"], state["index"]
        self._it = None


# ---------------------------------------------------------------------
# 指標の記録（JSON Lines）
# ---------------------------------------------------------------------


def append_metrics(
    path: str | os.PathLike[str], record: dict[str, Any]
) -> None:
    """指標の 1 行を JSON Lines のファイルに追記する。

    書くたびに開いて閉じるので、プロセスが落ちても書いた行は残る。
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """JSON Lines の指標を読み、1 行 1 辞書のリストで返す。

    書いている途中で落ちた最後の 1 行（壊れた行）は読み飛ばす。
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise
    return records


def truncate_metrics(path: str | os.PathLike[str], step: int) -> None:
    """``step`` より後の行を消す。再開したときに行が重複しないように。"""
    path = Path(path)
    if not path.exists():
        return
    kept = [r for r in read_metrics(path) if r.get("step", 0) <= step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept),
        encoding="utf-8",
    )
    os.replace(tmp, path)


def progress_disabled(enabled: bool = True, rank: int = 0) -> bool | None:
    """tqdm の ``disable`` に渡す値を決める。

    CI（環境変数 CI が設定されている）と rank 0 以外では必ず消す。
    それ以外は None を返し、「端末（TTY）でなければ消す」という tqdm の
    判断に任せる。ログファイルに進捗バーの書き換えが溜まらないように。
    """
    ci = os.environ.get("CI", "").lower() not in ("", "0", "false")
    if not enabled or ci or rank != 0:
        return True
    return None


# ---------------------------------------------------------------------
# 分散学習（torchrun + DDP）
# ---------------------------------------------------------------------


@dataclass(frozen=True)
class DistInfo:
    """このプロセスが分散学習のどこにいるか。"""

    rank: int = 0  # 全プロセスの中の番号
    local_rank: int = 0  # このマシンの中の番号（GPU の番号）
    world_size: int = 1  # 全プロセスの数

    @property
    def is_main(self) -> bool:
        """ファイルを書くのは rank 0 だけにする。"""
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """torchrun が設定した環境変数を見て、プロセスグループに加わる。

    torchrun で起動されていなければ（WORLD_SIZE が無いか 1 なら）
    何もしない。通信は GPU なら NCCL、CPU なら gloo を使う。
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistInfo()
    info = DistInfo(
        int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), world_size
    )
    if not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(info.local_rank)
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend)
    return info


def cleanup_distributed() -> None:
    """プロセスグループを閉じる。分散学習のスクリプトの最後に呼ぶ。"""
    if dist.is_initialized():
        dist.destroy_process_group()


# ---------------------------------------------------------------------
# Trainer
# ---------------------------------------------------------------------

# 変えても再開に差し支えない設定（ほかが違えば警告する）
_RESUMABLE_CHANGES = {
    "device",
    "progress",
    "compile",
    "resume",
    "checkpoint_path",
    "metrics_path",
}


class StepResult(NamedTuple):
    """1 回の更新の結果。損失と勾配のノルムはデバイス上のテンソル。"""

    loss: torch.Tensor  # マイクロバッチの損失の平均
    grad_norm: torch.Tensor  # クリップする前の勾配のノルム
    tokens: int  # このプロセスが読んだトークンの数
    lr: float  # この更新に使った学習率


class Trainer:
    """任意のモデルを ``loss_fn(model, batch) -> 損失`` で学習する。

    Args:
        model: 学習するモデル。
        config: 学習の設定。
        train_data: 引数なしで 1 バッチを返す関数か、DataLoader など
            バッチの反復可能。
        loss_fn: ``loss_fn(model, batch)`` で損失（スカラー）を返す関数。
            DDP で勾配を同期させるため、モデルは ``model(...)`` の形で
            呼ぶこと（``model.forward`` を直接呼ぶと同期されない）。
        val_data: 評価に使うデータ（``train_data`` と同じ形）。
        eval_fn: 評価のときに呼ぶ ``eval_fn(model) -> {名前: 値}``。
            正解率など、損失のほかの指標を記録するのに使う。DDP では
            ランクごとに呼ばれ、記録されるのは rank 0 の値。

    作るときに乱数の種を ``config.seed``（DDP では rank を足した値）で
    固定し直すので、学習の結果は種だけで決まる。複数のマシンで再開
    するときは、チェックポイントを全マシンから読める場所に置くこと。
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        train_data: Data,
        loss_fn: LossFn,
        *,
        val_data: Data | None = None,
        eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    ) -> None:
        self.config = config
        device = select_device(config.device)
        self.dist = init_distributed(device.type)
        if device.type == "cuda" and self.dist.world_size > 1:
            device = torch.device("cuda", self.dist.local_rank)
        self.device = device
        # ランクごとに種をずらし、ドロップアウトや乱数で切り出す
        # バッチがプロセスごとに違うようにする
        seed_everything(config.seed + self.dist.rank, config.deterministic)

        # Trainer を作るときに一度だけ決める（警告も一度だけ）
        self.bf16 = use_bf16(config.mixed_precision, device)
        self.model = model.to(device)  # 保存するのはこの素のモデル
        self.optimizer = make_optimizer(self.model, config, device)
        self.scheduler = make_scheduler(self.optimizer, config)
        # 順伝播に使うモデル: 素のモデル → compile → DDP の順に包む
        self.eval_model: nn.Module = self.model
        if config.compile:
            self.eval_model = torch.compile(self.model)  # type: ignore
        self.ddp: DistributedDataParallel | None = None
        if self.dist.world_size > 1:
            # DDP は作るときに rank 0 の重みを全ランクに配るので、
            # 初期値がランクごとに違っていても同じところから始まる
            ids = [device.index] if device.type == "cuda" else None
            self.ddp = DistributedDataParallel(
                self.eval_model, device_ids=ids
            )
        self.train_model: nn.Module = self.ddp or self.eval_model

        self.loss_fn = loss_fn
        self.train_stream = BatchStream(
            train_data, config.seed + self.dist.rank
        )
        self.val_data = val_data
        self.eval_fn = eval_fn
        self.step = 0  # 終えた更新の回数

    # -- 1 ステップ ---------------------------------------------------

    def _autocast(self) -> AbstractContextManager[Any]:
        """CUDA では bf16 で順伝播する（use_bf16）。bf16 は指数部が
        float32 と同じ幅なので、fp16 と違って損失のスケーリングが要らない。
        """
        if self.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def _no_sync(self) -> AbstractContextManager[Any]:
        assert self.ddp is not None
        return self.ddp.no_sync()

    def train_step(self) -> StepResult:
        """マイクロバッチ ``grad_accum_steps`` 個ぶんで 1 回更新する。

        勾配は次のステップの始めまで残すので、更新の後で調べられる。
        """
        cfg = self.config
        k = cfg.grad_accum_steps
        self.train_model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self.device)
        tokens = 0
        for i in range(k):
            batch = move_to(next(self.train_stream), self.device)
            tokens += count_tokens(batch)
            # DDP は backward のたびに勾配を全ランクで平均する。累積の
            # 途中では要らないので、最後のマイクロバッチだけ同期する
            sync = self.ddp is None or i == k - 1
            with nullcontext() if sync else self._no_sync():
                with self._autocast():
                    loss = self.loss_fn(self.train_model, batch)
                # 損失は各マイクロバッチの平均なので、k で割って足せば
                # k 倍のバッチの平均と同じ勾配になる
                # backward は型注釈の無い関数なので、mypy に断っておく
                (loss / k).backward()  # type: ignore[no-untyped-call]
            total += loss.detach()
        # max_norm が無限大なら、クリップせずにノルムだけを測る
        max_norm = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        grad_norm = nn.utils.clip_grad_norm_(
            self.model.parameters(), max_norm
        )
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return StepResult(total / k, grad_norm, tokens, lr)

    # -- 評価 -------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """検証データの損失（と ``eval_fn`` の指標）を求める。

        ドロップアウトを止めるため ``model.eval()`` にし、終わったら
        元に戻す。乱数は ``isolated_rng`` で切り離すので、毎回同じ
        バッチで測れ、学習の乱数の流れも乱さない。
        """
        was_training = self.model.training
        self.model.eval()
        results: dict[str, float] = {}
        try:
            with isolated_rng(self.config.seed + self.dist.rank):
                if self.val_data is not None:
                    results["val_loss"] = self._val_loss(self.val_data)
                if self.eval_fn is not None:
                    results.update(self.eval_fn(self.eval_model))
        finally:
            self.model.train(was_training)
        return results

    def _val_loss(self, data: Data) -> float:
        n = self.config.eval_batches
        batches: Iterable[Batch]
        if callable(data):
            batches = (data() for _ in range(n))
        else:
            batches = itertools.islice(data, n)
        total = torch.zeros((), device=self.device)
        count = 0
        for batch in batches:
            with self._autocast():
                loss = self.loss_fn(
                    self.eval_model, move_to(batch, self.device)
                )
            total += loss.float()
            count += 1
        if count == 0:
            raise ValueError("検証データが 1 バッチもありません。")
        return float(self._mean_over_ranks(total / count))

    def _mean_over_ranks(self, value: torch.Tensor) -> torch.Tensor:
        """全ランクの平均を返す（1 プロセスならそのまま）。"""
        if self.dist.world_size == 1:
            return value
        value = value.detach().clone()
        dist.all_reduce(value)
        return value / self.dist.world_size

    # -- チェックポイント --------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """再開に要るすべての状態。乱数の状態は全ランクぶんを集める。"""
        rngs: list[Any] = [get_rng_state()]
        if self.dist.world_size > 1:
            rngs = [None] * self.dist.world_size
            dist.all_gather_object(rngs, get_rng_state())
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rngs,
            "data": self.train_stream.state_dict(),
            "step": self.step,
            "config": asdict(self.config),
        }

    def save(self, path: str | os.PathLike[str] | None = None) -> None:
        """チェックポイントを保存する。全ランクで呼び、書くのは rank 0。"""
        path = path or self.config.checkpoint_path
        if path is None:
            raise ValueError("checkpoint_path が設定されていません。")
        state = self.state_dict()  # 全ランクが乱数の状態を集めに加わる
        if self.dist.is_main:
            save_checkpoint(path, state)

    def load(self, path: str | os.PathLike[str] | None = None) -> None:
        """チェックポイントを読み、保存したときの状態に戻す。"""
        path = path or self.config.checkpoint_path
        if path is None:
            raise ValueError("checkpoint_path が設定されていません。")
        state = load_checkpoint(path)
        self._warn_config_changes(state["config"])
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise CheckpointError(
                f"{path} の重みの名前や形が、このモデルと合いません。"
                "チェックポイントを作ったときと同じ設定でモデルを"
                f"作ってください。\n{e}"
            ) from e
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.train_stream.load_state_dict(state["data"])
        self.step = state["step"]
        rngs = state["rng"]
        if len(rngs) == self.dist.world_size:
            set_rng_state(rngs[self.dist.rank])
        else:
            warnings.warn(
                f"プロセスの数が保存したとき（{len(rngs)}）と違うので、"
                "乱数の状態は戻しません。",
                stacklevel=2,
            )

    def _warn_config_changes(self, saved: dict[str, Any]) -> None:
        now = asdict(self.config)
        changed = sorted(
            k
            for k in now.keys() - _RESUMABLE_CHANGES
            if saved.get(k) != now[k]
        )
        if changed:
            warnings.warn(
                "チェックポイントを作ったときと設定が違います（"
                + ", ".join(
                    f"{k}: {saved.get(k)!r} → {now[k]!r}" for k in changed
                )
                + "）。止めずに学習した結果とは一致しません。",
                stacklevel=3,
            )

    # -- 学習ループ ---------------------------------------------------

    def train(self) -> list[dict[str, Any]]:
        """``max_steps`` まで学習し、この呼び出しで記録した指標を返す。

        ``checkpoint_path`` にファイルがあり ``resume`` が真なら、そこから
        続ける。指標のファイルからは、そのチェックポイントより後の行を
        消す（止まる前に書いた行と重複しないように）。最初から学習する
        ときは、前の実行の行をすべて消す。

        記録する ``train_loss`` は前回の記録からの平均（DDP では全ランク
        の平均）、``grad_norm`` はそのステップのクリップ前のノルム、
        ``tokens_per_sec`` は全ランクを合わせた速さ。
        """
        cfg = self.config
        self._start_run()
        history: list[dict[str, Any]] = []
        bar = tqdm(
            total=cfg.max_steps,
            initial=self.step,
            desc="学習",
            disable=progress_disabled(cfg.progress, self.dist.rank),
        )
        meter = _Meter(self.device)
        while self.step < cfg.max_steps:
            result = self.train_step()
            meter.add(result)
            record = self._record(result, meter)
            if record:
                history.append(record)
                if cfg.metrics_path and self.dist.is_main:
                    append_metrics(cfg.metrics_path, record)
                bar.set_postfix(
                    {
                        k: f"{v:.4g}"
                        for k, v in record.items()
                        if k != "step"
                    }
                )
            if self._checkpoint_due():
                self.save()
            if "train_loss" in record:
                # 評価と保存にかかった時間は速さに含めない
                meter.reset()
            bar.update(1)
        bar.close()
        return history

    def _start_run(self) -> None:
        """再開するならチェックポイントを読み、指標のファイルを整える。"""
        cfg = self.config
        if (
            cfg.resume
            and cfg.checkpoint_path
            and Path(cfg.checkpoint_path).exists()
        ):
            self.load()
        if cfg.metrics_path and self.dist.is_main:
            # 最初からなら前の実行の行を、再開ならチェックポイントより
            # 後の行を消す
            truncate_metrics(cfg.metrics_path, self.step)

    def _record(self, result: StepResult, meter: _Meter) -> dict[str, Any]:
        """このステップで記録する指標（記録しないステップでは空）。"""
        cfg = self.config
        step, last = self.step, self.step == cfg.max_steps
        record: dict[str, Any] = {}
        if step % cfg.log_interval == 0 or last:
            # .item() は GPU の計算が終わるのを待つので、記録する
            # ステップでだけ数値にする
            loss = self._mean_over_ranks(meter.loss_sum / meter.n_steps)
            seconds = max(time.perf_counter() - meter.t0, 1e-9)
            record.update(
                train_loss=loss.item(),
                lr=result.lr,
                grad_norm=result.grad_norm.item(),
                tokens_per_sec=meter.tokens
                * self.dist.world_size
                / seconds,
            )
        if cfg.eval_interval and (step % cfg.eval_interval == 0 or last):
            record.update(self.evaluate())
        return {"step": step, **record} if record else {}

    def _checkpoint_due(self) -> bool:
        """このステップでチェックポイントを保存するか。"""
        cfg = self.config
        if not cfg.checkpoint_path:
            return False
        if self.step == cfg.max_steps:
            return True
        interval = cfg.checkpoint_interval
        return bool(interval) and self.step % interval == 0


class _Meter:
    """前回の記録からの損失の和・ステップ数・トークン数・時間。"""

    def __init__(self, device: torch.device) -> None:
        self.loss_sum = torch.zeros((), device=device)
        self.reset()

    def add(self, result: StepResult) -> None:
        self.loss_sum += result.loss
        self.tokens += result.tokens
        self.n_steps += 1

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.tokens, self.n_steps = 0, 0
        self.t0 = time.perf_counter()
