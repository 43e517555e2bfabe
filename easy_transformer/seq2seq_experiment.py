"""系列変換の実験: 課題のデータでエンコーダ・デコーダを学習して評価する。

    result = train_seq2seq("rpn")   # 中置記法 → 逆ポーランド記法
    result.test_exact_match         # テストの完全一致率

設定（``Seq2SeqConfig``）、損失、バッチの並べ方、評価（貪欲法での
予測と完全一致率）、学習の順に並ぶ。課題ごとの既定の設定
（``TASK_CONFIGS``）は、2 コアの CPU で数分の学習で目標に届くように
実際に測って決めた（``benchmarks/bench_tasks.py``）。``tiny=True`` の
極小の設定は、テストと動作確認のためのもので、ほとんど何も学習しない。

``out_dir`` を渡すと、学習曲線（``metrics.jsonl``、1 行 1 記録の
JSON Lines）、結果（``result.json``）、モデル（``model.pt``）をそこに
書く。``model.pt`` は ``model_io.load_model`` で読み戻せる。
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeAlias

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Sampler

from easy_transformer._experiment import (
    count_params,
    last_value,
    make_train_config,
    result_dict,
    save_result,
    timed_train,
)
from easy_transformer.attention import padding_mask
from easy_transformer.tasks import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    TASKS,
    Pair,
    PairDataset,
    Splits,
    collate,
    make_splits,
)
from easy_transformer.tokenizer import CharTokenizer, Tokenizer
from easy_transformer.training import (
    TrainConfig,
    Trainer,
    make_dataloader,
    seed_everything,
)
from easy_transformer.transformer import Transformer, TransformerConfig

PathLike: TypeAlias = str | os.PathLike[str]


@dataclass
class Seq2SeqConfig:
    """系列変換の課題 1 つぶんの設定（データ・モデル・学習）。"""

    # データ（tasks.make_splits に渡す）
    max_level: int = 8  # 学習に使う最大のレベル（列の長さ、式の深さ）
    n_train: int = 20_000
    n_valid: int = 500
    n_test: int = 1000
    n_general: int = 500  # 汎化テスト（max_level より高いレベル）
    general_levels: int = 2
    max_len: int = 64  # 入力と出力の最大の文字数
    # モデル（エンコーダとデコーダは同じ層の数）。同じ計算時間なら、
    # 幅 128 より幅 64 で長く学習するほうが速く目標に届いた
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 256
    # 例が十分にあって過学習しにくいので 0。0.1 にすると、同じ
    # ステップ数での完全一致率がかえって下がった
    dropout: float = 0.0
    norm_first: bool = True  # 学習率を大きめにしても安定する Pre-LN
    # 学習
    batch_size: int = 64
    # 長さの近い例を同じバッチに集めて、パディングの無駄を減らす
    group_by_length: bool = True
    max_steps: int = 1500
    lr: float = 2e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.01
    label_smoothing: float = 0.0
    eval_interval: int = 250
    eval_batches: int = 4  # 検証の損失に使うバッチの数
    eval_examples: int = 200  # 学習中に完全一致率を測る検証の例の数


# 本格的な設定。2 コアの CPU で、コピー・反転・ソートは 2 分以内、
# rpn は 5 分以内の学習で、テストの完全一致率 99% 以上に届くように
# 調整した（benchmarks/bench_tasks.py と benchmarks/results/tasks.json）
TASK_CONFIGS: dict[str, Seq2SeqConfig] = {
    "copy": Seq2SeqConfig(max_level=10),
    "reverse": Seq2SeqConfig(max_level=10),
    "sort": Seq2SeqConfig(max_level=10),
    "rpn": Seq2SeqConfig(max_level=3, n_train=40_000, max_steps=3500),
    # 式の値を求める課題は、繰り上がりや除算を覚える必要があり、この
    # 大きさと学習時間では rpn よりずっと低い完全一致率にとどまる
    "eval": Seq2SeqConfig(max_level=2, n_train=40_000, max_steps=3000),
}

# テスト用の極小の設定（数秒で終わる。学習はほとんど進まない）
_TINY = Seq2SeqConfig(
    n_train=64,
    n_valid=16,
    n_test=16,
    n_general=8,
    d_model=16,
    n_heads=2,
    n_layers=1,
    d_ff=32,
    batch_size=16,
    max_steps=6,
    warmup_steps=2,
    eval_interval=3,
    eval_batches=1,
    eval_examples=8,
)
TINY_TASK_CONFIGS: dict[str, Seq2SeqConfig] = {
    name: replace(_TINY, max_level=2 if name in ("rpn", "eval") else 4)
    for name in TASKS
}


def _check_task(task: str) -> None:
    if task not in TASK_CONFIGS:
        raise ValueError(
            f"課題 {task!r} はありません。"
            f"{', '.join(TASK_CONFIGS)} のどれかを選んでください。"
        )


def seq2seq_config(
    task: str, *, tiny: bool = False, **overrides: Any
) -> Seq2SeqConfig:
    """課題の既定の設定を、overrides の項目だけ変えて返す。

    例: ``seq2seq_config("rpn", max_steps=100)``。tiny=True なら
    テスト用の極小の設定から始める。
    """
    _check_task(task)
    base = (TINY_TASK_CONFIGS if tiny else TASK_CONFIGS)[task]
    return replace(base, **overrides)


def _transformer_config(
    config: Seq2SeqConfig, vocab_size: int
) -> TransformerConfig:
    c = config
    return TransformerConfig(
        src_vocab_size=vocab_size,
        tgt_vocab_size=vocab_size,
        d_model=c.d_model,
        n_heads=c.n_heads,
        n_encoder_layers=c.n_layers,
        n_decoder_layers=c.n_layers,
        d_ff=c.d_ff,
        dropout=c.dropout,
        # 出力は <bos> と <eos> のぶん長い。汎化テストの入力も入るよう
        # 余裕を持たせる（正弦波の位置エンコーディングは表を引くだけ）
        max_len=2 * c.max_len + 2,
        norm_first=c.norm_first,
    )


def _collate_tuple(
    items: Sequence[tuple[Tensor, Tensor]],
) -> tuple[Tensor, Tensor]:
    """collate の結果を (src, tgt) のタプルにする。

    Trainer のデバイスへの転送（move_to）とトークンの数え方
    （count_tokens）は、テンソルのタプルなら中まで見てくれる。
    """
    batch = collate(items)
    return batch.src, batch.tgt


class LengthGroupedBatches(Sampler[list[int]]):
    """長さの近い例を同じバッチに集めるバッチの並び（DataLoader 用）。

    ランダムに並べた例を batch_size × group 個ずつの塊に切り、塊の
    中を長さの順に並べてからバッチに切る。最後にバッチの順を混ぜる。
    パディングの位置の計算は無駄なので、長さがそろうほど速い（rpn の
    課題では 1.5 倍以上）。塊の中だけで並べるので、バッチの中身は
    エポックごとに変わる。乱数は torch の大域の乱数を使う（Trainer
    がエポックごとに種を決めるので、並びは再現できる）。

    torchrun で動かすと、環境変数 RANK と WORLD_SIZE を読み、混ぜた
    バッチの列をランクごとに重ならないよう分ける（k 番目のバッチは
    ランク k mod WORLD_SIZE へ）。どのランクも同じ種から同じ列を
    作るので、分け方がずれることはない。余りのバッチは捨てて、
    全ランクのステップ数をそろえる。
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        group: int = 50,
        *,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.group = group
        # make_dataloader と同じく、プロセスグループを作る前でも
        # 使えるように環境変数から読む
        self.rank = (
            int(os.environ.get("RANK", "0")) if rank is None else rank
        )
        self.world_size = (
            int(os.environ.get("WORLD_SIZE", "1"))
            if world_size is None
            else world_size
        )
        if not 0 <= self.rank < self.world_size:
            raise ValueError(
                f"rank={self.rank} は 0〜{self.world_size - 1} の範囲に"
                "ありません。RANK と WORLD_SIZE を確かめてください。"
            )

    def _batches(self) -> list[list[int]]:
        order = torch.randperm(len(self.lengths)).tolist()
        size = self.batch_size * self.group
        batches = []
        for i in range(0, len(order), size):
            chunk = sorted(
                order[i : i + size], key=self.lengths.__getitem__
            )
            for j in range(0, len(chunk), self.batch_size):
                batch = chunk[j : j + self.batch_size]
                # 半端なバッチは捨てる（drop_last と同じ）
                if len(batch) == self.batch_size:
                    batches.append(batch)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches()
        shuffled = torch.randperm(len(batches)).tolist()
        mine = shuffled[self.rank :: self.world_size]
        for k in mine[: len(self)]:
            yield batches[k]

    def __len__(self) -> int:
        size = self.batch_size * self.group
        n_batches = sum(
            min(size, len(self.lengths) - i) // self.batch_size
            for i in range(0, len(self.lengths), size)
        )
        return n_batches // self.world_size


def seq2seq_loss(
    model: nn.Module,
    batch: tuple[Tensor, Tensor],
    label_smoothing: float = 0.0,
) -> Tensor:
    """教師強制で、ターゲットの各位置の次の文字の交差エントロピー。

    デコーダには ``<bos> 出力`` を読ませ、``出力 <eos>`` を当てさせる。
    パディングの位置は損失に入れない。
    """
    src, tgt = batch
    logits = model(src, tgt[:, :-1], padding_mask(src, PAD_ID))
    return F.cross_entropy(
        logits.flatten(0, 1),
        tgt[:, 1:].flatten(),
        ignore_index=PAD_ID,
        label_smoothing=label_smoothing,
    )


def decode_output(vocab: Tokenizer, ids: Sequence[int]) -> str:
    """デコーダが作った ID の列を文字列にする。

    最初の ``<eos>`` で止め、``<bos>`` と ``<pad>`` は読み飛ばす
    （greedy_decode は出し終えた列の残りを ``<eos>`` で埋める）。
    """
    ids = list(ids)
    end = ids.index(EOS_ID) if EOS_ID in ids else len(ids)
    return vocab.decode(ids[:end], skip_special_tokens=True)


@torch.no_grad()
def predict(
    model: Transformer,
    sources: Sequence[str],
    vocab: Tokenizer,
    *,
    max_new_tokens: int,
    batch_size: int = 256,
) -> list[str]:
    """入力の文字列ごとに、貪欲法で出力の文字列を作る。

    batch_size 個ずつまとめてデコードする。長さの違う入力はパディング
    し、マスクでパディングを見ないようにするので、1 つずつデコード
    したときと同じ出力になる（浮動小数点の丸めの差を除く）。
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()  # ドロップアウトを止める
    outputs: list[str] = []
    try:
        for i in range(0, len(sources), batch_size):
            src = pad_sequence(
                [
                    torch.tensor(vocab.encode(s), dtype=torch.long)
                    for s in sources[i : i + batch_size]
                ],
                batch_first=True,
                padding_value=PAD_ID,
            ).to(device)
            ys = model.greedy_decode(
                src,
                BOS_ID,
                EOS_ID,
                max_new_tokens,
                padding_mask(src, PAD_ID),
            )
            outputs.extend(decode_output(vocab, row.tolist()) for row in ys)
    finally:
        model.train(was_training)
    return outputs


def exact_match(
    model: Transformer,
    dataset: PairDataset | Sequence[Pair],
    vocab: Tokenizer,
    *,
    batch_size: int = 256,
) -> float:
    """出力が正解と 1 文字も違わずに一致した例の割合（0〜1）。

    デコードは貪欲法で、正解より 1 文字長くなったところで打ち切る
    （それより長い出力は、どのみち不正解）。
    """
    pairs = dataset.pairs if isinstance(dataset, PairDataset) else dataset
    if not pairs:
        raise ValueError("評価する例が 1 つもありません。")
    sources = [src for src, _ in pairs]
    # 正解の最長 + <eos> まで作れば、正解との一致を判定できる
    max_new = max(len(tgt) for _, tgt in pairs) + 1
    predictions = predict(
        model,
        sources,
        vocab,
        max_new_tokens=max_new,
        batch_size=batch_size,
    )
    hits = sum(
        pred == tgt
        for pred, (_, tgt) in zip(predictions, pairs, strict=True)
    )
    return hits / len(pairs)


@dataclass
class Seq2SeqResult:
    """train_seq2seq の結果。model と vocab 以外は JSON にできる。"""

    task: str
    seed: int
    config: Seq2SeqConfig
    steps: int
    train_seconds: float  # 学習ループの壁時計の時間（途中の評価を含む）
    cpu_seconds: float  # 同じ区間でこのプロセスが使った CPU 時間
    n_params: int
    val_loss: float | None
    test_exact_match: float
    general_exact_match: float | None
    # テストと汎化テストの例: {"input", "target", "prediction"}
    examples: list[dict[str, str]]
    history: list[dict[str, Any]]
    model: Transformer = field(repr=False)
    vocab: CharTokenizer = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return result_dict(self, skip=("model", "vocab"))

    def save(self, out_dir: PathLike) -> None:
        """out_dir に result.json と model.pt を書く。"""
        save_result(out_dir, self.to_dict(), self.model, self.vocab)


def _examples(
    model: Transformer,
    vocab: Tokenizer,
    pairs: Sequence[Pair],
    split: str,
    n: int,
) -> list[dict[str, str]]:
    chosen = list(pairs[:n])
    if not chosen:
        return []
    max_new = max(len(tgt) for _, tgt in chosen) + 1
    preds = predict(
        model, [s for s, _ in chosen], vocab, max_new_tokens=max_new
    )
    return [
        {"split": split, "input": s, "target": t, "prediction": p}
        for (s, t), p in zip(chosen, preds, strict=True)
    ]


def _make_loaders(
    splits: Splits, vocab: CharTokenizer, cfg: Seq2SeqConfig, seed: int
) -> tuple[DataLoader[Any], DataLoader[Any]]:
    """学習と検証の DataLoader を作る。"""
    train_set = PairDataset(splits.train, vocab)
    train_loader: DataLoader[Any]
    if cfg.group_by_length:
        lengths = [len(src) + len(tgt) for src, tgt in splits.train]
        train_loader = DataLoader(
            train_set,
            batch_sampler=LengthGroupedBatches(lengths, cfg.batch_size),
            collate_fn=_collate_tuple,
        )
    else:
        train_loader = make_dataloader(
            train_set, cfg.batch_size, seed=seed, collate_fn=_collate_tuple
        )
    val_loader = make_dataloader(
        PairDataset(splits.valid, vocab),
        cfg.batch_size,
        shuffle=False,
        drop_last=False,
        collate_fn=_collate_tuple,
    )
    return train_loader, val_loader


def _make_trainer(
    model: Transformer,
    vocab: CharTokenizer,
    splits: Splits,
    cfg: Seq2SeqConfig,
    train_config: TrainConfig,
    seed: int,
) -> Trainer:
    """学習と検証のデータ、損失、途中の評価（完全一致率）を Trainer に。"""
    train_loader, val_loader = _make_loaders(splits, vocab, cfg, seed)
    eval_pairs = splits.valid[: cfg.eval_examples]

    def eval_fn(_: nn.Module) -> dict[str, float]:
        return {"val_exact_match": exact_match(model, eval_pairs, vocab)}

    return Trainer(
        model,
        train_config,
        train_loader,
        partial(seq2seq_loss, label_smoothing=cfg.label_smoothing),
        val_data=val_loader,
        eval_fn=eval_fn,
    )


def _make_splits(task: str, cfg: Seq2SeqConfig, seed: int) -> Splits:
    return make_splits(
        task,
        seed=seed,
        n_train=cfg.n_train,
        n_valid=cfg.n_valid,
        n_test=cfg.n_test,
        max_level=cfg.max_level,
        n_general=cfg.n_general,
        general_levels=cfg.general_levels,
        max_len=cfg.max_len,
    )


def train_seq2seq(
    task: str,
    *,
    config: Seq2SeqConfig | None = None,
    seed: int = 0,
    out_dir: PathLike | None = None,
    device: str = "auto",
    progress: bool = True,
    resume: bool = False,
) -> Seq2SeqResult:
    """系列変換の課題を作り、エンコーダ・デコーダを学習して評価する。

    データは tasks.make_splits で seed から作る（学習・検証・テスト・
    汎化テストの入力は重複しない）。学習中は eval_interval ごとに
    検証の損失と、検証の先頭 eval_examples 個の完全一致率
    （val_exact_match）を記録する。学習の後でテストと汎化テストの
    完全一致率を測る。out_dir を渡すと、学習の途中経過も
    ``checkpoint.pt`` に保存する。resume=True なら、そこから続ける。
    """
    _check_task(task)
    cfg = config or TASK_CONFIGS[task]
    splits = _make_splits(task, cfg, seed)
    vocab = splits.vocab()
    seed_everything(seed)  # 重みの初期値を固定する（Trainer より前に）
    model = Transformer(_transformer_config(cfg, vocab.vocab_size))
    train_config = make_train_config(
        cfg,
        betas=(0.9, 0.98),
        seed=seed,
        device=device,
        progress=progress,
        out_dir=out_dir,
        resume=resume,
    )
    trainer = _make_trainer(model, vocab, splits, cfg, train_config, seed)
    history, seconds, cpu_seconds = timed_train(trainer)
    result = Seq2SeqResult(
        task=task,
        seed=seed,
        config=cfg,
        steps=trainer.step,
        train_seconds=seconds,
        cpu_seconds=cpu_seconds,
        n_params=count_params(model),
        val_loss=last_value(history, "val_loss"),
        history=history,
        model=model,
        vocab=vocab,
        **_evaluate_splits(model, vocab, splits),
    )
    if out_dir is not None:
        result.save(out_dir)
    return result


def _evaluate_splits(
    model: Transformer, vocab: CharTokenizer, splits: Splits
) -> dict[str, Any]:
    """テストと汎化テストの完全一致率と、それぞれの例 5 つずつ。"""
    general = splits.general
    return {
        "test_exact_match": exact_match(model, splits.test, vocab),
        "general_exact_match": (
            exact_match(model, general, vocab) if general else None
        ),
        "examples": _examples(model, vocab, splits.test, "test", 5)
        + _examples(model, vocab, general, "general", 5),
    }
