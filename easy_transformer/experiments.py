"""課題の学習と評価: 本文から 1 行で呼べる実験（第4部・第5部）。

    result = train_seq2seq("rpn")           # 中置記法 → 逆ポーランド記法
    result = train_minilang_lm()            # ミニ言語のプログラムを書く GPT
    result = train_text_lm("input.txt")     # 任意のテキストで文字単位の GPT

上から順に、系列変換（エンコーダ・デコーダ）の設定・評価・学習、
言語モデル（GPT）の設定・生成・学習、モデルの保存と読み込み、と並ぶ。
課題ごとの既定の設定（``TASK_CONFIGS`` など）は、2 コアの CPU で数分の
学習で目標に届くように実際に測って決めた（``benchmarks/``）。
``tiny=True`` の極小の設定は、テストと動作確認のためのもので、ほとんど
何も学習しない。

``out_dir`` を渡すと、学習曲線（``metrics.jsonl``、1 行 1 記録の
JSON Lines）、結果（``result.json``）、モデル（``model.pt``）をそこに
書く。``model.pt`` は ``load_model`` で読み戻せる。
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeAlias

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Sampler

from easy_transformer.attention import padding_mask
from easy_transformer.checkpoint import (
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from easy_transformer.gpt import GPT, GPTConfig
from easy_transformer.minilang import MiniLangError, evaluate, parse
from easy_transformer.tasks import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    TASKS,
    CharVocab,
    Pair,
    PairDataset,
    acceptance_rate,
    collate,
    make_program_splits,
    make_splits,
    split_programs,
    to_corpus,
)
from easy_transformer.tokenizer import (
    ByteLevelBPETokenizer,
    CharTokenizer,
    Tokenizer,
)
from easy_transformer.training import (
    TrainConfig,
    Trainer,
    make_dataloader,
    seed_everything,
    select_device,
)
from easy_transformer.transformer import Transformer, TransformerConfig

PathLike: TypeAlias = str | os.PathLike[str]
# テキストと ID を行き来するもの。課題の語彙か、トークナイザ
TextCodec: TypeAlias = CharVocab | Tokenizer

MODEL_FILE = "model.pt"
RESULT_FILE = "result.json"
METRICS_FILE = "metrics.jsonl"


# =====================================================================
# 系列変換（エンコーダ・デコーダ）
# =====================================================================


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
    """

    def __init__(
        self, lengths: Sequence[int], batch_size: int, group: int = 50
    ) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.group = group

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
        for k in torch.randperm(len(batches)).tolist():
            yield batches[k]

    def __len__(self) -> int:
        return sum(
            min(self.batch_size * self.group, len(self.lengths) - i)
            // self.batch_size
            for i in range(
                0, len(self.lengths), self.batch_size * self.group
            )
        )


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


@torch.no_grad()
def predict(
    model: Transformer,
    sources: Sequence[str],
    vocab: CharVocab,
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
            outputs.extend(vocab.decode(row) for row in ys)
    finally:
        model.train(was_training)
    return outputs


def exact_match(
    model: Transformer,
    dataset: PairDataset | Sequence[Pair],
    vocab: CharVocab,
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
    vocab: CharVocab = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return _result_dict(self, skip=("model", "vocab"))

    def save(self, out_dir: PathLike) -> None:
        """out_dir に result.json と model.pt を書く。"""
        _save_result(out_dir, self.to_dict(), self.model, self.vocab)


def _examples(
    model: Transformer,
    vocab: CharVocab,
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


def train_seq2seq(
    task: str,
    *,
    config: Seq2SeqConfig | None = None,
    seed: int = 0,
    out_dir: PathLike | None = None,
    device: str = "auto",
    progress: bool = True,
) -> Seq2SeqResult:
    """系列変換の課題を作り、エンコーダ・デコーダを学習して評価する。

    データは tasks.make_splits で seed から作る（学習・検証・テスト・
    汎化テストの入力は重複しない）。学習中は eval_interval ごとに
    検証の損失と、検証の先頭 eval_examples 個の完全一致率
    （val_exact_match）を記録する。学習の後でテストと汎化テストの
    完全一致率を測る。
    """
    _check_task(task)
    cfg = config or TASK_CONFIGS[task]
    splits = make_splits(
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
    vocab = splits.vocab()
    # Trainer も種を固定するが、それはモデルを作った後なので、
    # 重みの初期値はここで固定する
    seed_everything(seed)
    model = Transformer(_transformer_config(cfg, len(vocab)))

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
    eval_pairs = splits.valid[: cfg.eval_examples]

    def eval_fn(_: nn.Module) -> dict[str, float]:
        return {"val_exact_match": exact_match(model, eval_pairs, vocab)}

    train_config = _train_config(
        cfg.lr,
        cfg.min_lr,
        cfg.warmup_steps,
        cfg.max_steps,
        cfg.weight_decay,
        eval_interval=cfg.eval_interval,
        eval_batches=cfg.eval_batches,
        seed=seed,
        device=device,
        progress=progress,
        out_dir=out_dir,
    )
    trainer = Trainer(
        model,
        train_config,
        train_loader,
        partial(seq2seq_loss, label_smoothing=cfg.label_smoothing),
        val_data=val_loader,
        eval_fn=eval_fn,
    )
    history, seconds, cpu_seconds = _timed_train(trainer)

    general = (
        exact_match(model, splits.general, vocab)
        if splits.general
        else None
    )
    result = Seq2SeqResult(
        task=task,
        seed=seed,
        config=cfg,
        steps=trainer.step,
        train_seconds=seconds,
        cpu_seconds=cpu_seconds,
        n_params=_count_params(model),
        val_loss=_last(history, "val_loss"),
        test_exact_match=exact_match(model, splits.test, vocab),
        general_exact_match=general,
        examples=_examples(model, vocab, splits.test, "test", 5)
        + _examples(model, vocab, splits.general, "general", 5),
        history=history,
        model=model,
        vocab=vocab,
    )
    if out_dir is not None:
        result.save(out_dir)
    return result


# =====================================================================
# 言語モデル（GPT）
# =====================================================================


@dataclass
class LMConfig:
    """GPT の大きさと学習の設定。

    既定値は nanoGPT の shakespeare_char を CPU で試す例に近い
    （4 層・4 ヘッド・128 次元・ブロック長 64・バッチ 12・2000 反復・
    学習率 1e-3 から 1e-4 へのコサイン減衰・ウォームアップ 100・
    AdamW の beta2 0.99・dropout 0）。
    """

    # モデル（GPTConfig と同じ意味）
    block_size: int = 64
    n_layers: int = 4
    n_heads: int = 4
    d_model: int = 128
    dropout: float = 0.0
    bias: bool = True
    # 学習
    batch_size: int = 12
    max_steps: int = 2000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta2: float = (
        0.99  # 1 ステップのトークンが少ないので 0.95 より長く平均
    )
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_batches: int = 20
    val_fraction: float = 0.1  # テキストの末尾のこの割合を検証に使う


@dataclass
class MiniLangLMConfig(LMConfig):
    """ミニ言語のプログラム集で学習する GPT の設定。"""

    n_programs: int = 20_000  # 学習に使うプログラムの数
    n_valid_programs: int = 1000
    max_statements: int = 3
    max_depth: int = 2
    max_program_len: int = 64  # 1 行のプログラムの最大の文字数


@dataclass
class SamplingConfig:
    """生成の設定。generate_text の引数と同じ意味。"""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    n_samples: int = 64  # 並べて生成する列の数
    max_new_tokens: int = 200  # 1 列あたりに生成するトークンの数
    seed: int = 0


# nanoGPT の既定と同じく、線形層と LayerNorm にバイアスを持たない
TEXT_LM_CONFIG = LMConfig(bias=False)
# ミニ言語の本格的な設定。2 コアの CPU で数分の学習で、生成した
# プログラムの 90% 以上がパースできるように調整した
# （benchmarks/bench_minilang_lm.py）
MINILANG_LM_CONFIG = MiniLangLMConfig(
    block_size=128,
    n_layers=2,
    n_heads=4,
    d_model=64,
    batch_size=32,
    max_steps=1500,
    lr=2e-3,
    min_lr=2e-4,
)
# 温度 1.0 で top-k・top-p なし（モデルの分布からそのまま引く）。
# 1 列はブロック長に収まる 127 トークン（最初の改行のぶん 1 引く）
MINILANG_SAMPLING = SamplingConfig(temperature=1.0, max_new_tokens=127)
# テキストの言語モデルは、学習の後に例を 1 本だけ作る
TEXT_SAMPLING = SamplingConfig(n_samples=1, max_new_tokens=200)

TINY_LM_CONFIG = LMConfig(
    block_size=16,
    n_layers=1,
    n_heads=2,
    d_model=16,
    batch_size=4,
    max_steps=6,
    warmup_steps=2,
    eval_interval=3,
    eval_batches=2,
)
TINY_MINILANG_LM_CONFIG = MiniLangLMConfig(
    **asdict(TINY_LM_CONFIG), n_programs=64, n_valid_programs=16
)
TINY_SAMPLING = SamplingConfig(n_samples=2, max_new_tokens=15)
TINY_TEXT_SAMPLING = SamplingConfig(n_samples=1, max_new_tokens=15)


def lm_loss(model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
    """各位置で次のトークンを当てる交差エントロピー。"""
    x, y = batch
    logits = model(x)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())


def random_windows(
    ids: Tensor, block_size: int, batch_size: int
) -> Callable[[], tuple[Tensor, Tensor]]:
    """ID の列からランダムな位置の窓を切り出す関数を返す。

    返す関数は呼ぶたびに (x, y) を返す。どちらも (batch_size,
    block_size) で、y は x を 1 つずらしたもの。乱数は torch の大域の
    乱数を使うので、Trainer が種を固定すれば同じバッチの列になる。
    """
    if len(ids) <= block_size:
        raise ValueError(
            f"テキストが短すぎます（{len(ids)} トークン）。"
            f"block_size={block_size} より長いテキストを使うか、"
            "block_size を小さくしてください。"
        )

    def get_batch() -> tuple[Tensor, Tensor]:
        starts = torch.randint(len(ids) - block_size, (batch_size,))
        x = torch.stack([ids[s : s + block_size] for s in starts])
        y = torch.stack([ids[s + 1 : s + 1 + block_size] for s in starts])
        return x, y

    return get_batch


def _vocab_size(codec: TextCodec) -> int:
    return len(codec) if isinstance(codec, CharVocab) else codec.vocab_size


@torch.no_grad()
def generate_text(
    model: GPT,
    codec: TextCodec,
    prompt: str,
    *,
    max_new_tokens: int = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    do_sample: bool = True,
    n_samples: int = 1,
    seed: int = 0,
) -> list[str]:
    """prompt に続くテキストを n_samples 本作り、続きの部分だけを返す。

    GPT は block_size より長い列を読めないので、長く生成するときは
    直近の部分だけを文脈に残して続ける（古い部分は忘れる）。乱数は
    seed から作るので、同じ引数なら同じテキストになる。
    """
    ids = codec.encode(prompt)
    if not ids:
        raise ValueError(
            "プロンプトが空です。1 文字以上のプロンプトを渡して"
            "ください（例えば改行 1 文字）。"
        )
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()
    block = model.config.block_size
    out = torch.tensor([ids] * n_samples, device=device)
    prompt_len = out.size(1)
    remaining = max_new_tokens
    try:
        while remaining > 0:
            # 文脈は最大でも block の半分まで削り、1 回に半分以上を作る
            keep = min(out.size(1), block - min(remaining, block // 2))
            context = out[:, out.size(1) - keep :]
            n_new = min(remaining, block - keep)
            new = model.generate(
                context,
                n_new,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                do_sample=do_sample,
                generator=generator,
            )
            out = torch.cat([out, new[:, keep:]], dim=1)
            remaining -= n_new
    finally:
        model.train(was_training)
    return [codec.decode(row[prompt_len:].tolist()) for row in out]


@dataclass
class LMResult:
    """train_minilang_lm と train_text_lm の結果。"""

    name: str  # "minilang" か、学習したテキストのファイル名
    seed: int
    config: LMConfig
    tokenizer: str  # "char-vocab"（課題の語彙）、"char"、"bpe"
    vocab_size: int
    n_train_tokens: int
    steps: int
    train_seconds: float  # 学習ループの壁時計の時間（途中の評価を含む）
    cpu_seconds: float
    n_params: int
    val_loss: float | None
    tokens_per_sec: float | None  # 学習の速さ（評価の時間を除く平均）
    samples: list[str]  # 生成したテキストの例
    history: list[dict[str, Any]]
    model: GPT = field(repr=False)
    codec: TextCodec = field(repr=False)
    sampling: dict[str, Any] | None = None  # samples を作った設定
    # ミニ言語だけ: 生成したプログラムのうちパーサが受理した割合など
    n_generated_programs: int | None = None
    acceptance_rate: float | None = None
    novel_rate: float | None = None  # 受理したうち学習データに無いもの
    # 評価まで成功した割合。パースできても、未定義の変数や 0 除算で
    # 止まるプログラムは数えない（構文は正しいが意味が正しくない）
    run_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return _result_dict(self, skip=("model", "codec"))

    def save(self, out_dir: PathLike) -> None:
        """out_dir に result.json と model.pt を書く。"""
        _save_result(out_dir, self.to_dict(), self.model, self.codec)


def _gpt_config(config: LMConfig, vocab_size: int) -> GPTConfig:
    return GPTConfig(
        vocab_size=vocab_size,
        block_size=config.block_size,
        n_layers=config.n_layers,
        n_heads=config.n_heads,
        d_model=config.d_model,
        dropout=config.dropout,
        bias=config.bias,
    )


def _train_gpt(
    codec: TextCodec,
    train_ids: Tensor,
    val_ids: Tensor,
    cfg: LMConfig,
    *,
    seed: int,
    out_dir: PathLike | None,
    device: str,
    progress: bool,
) -> tuple[GPT, list[dict[str, Any]], float, float]:
    """GPT を作って学習し、(モデル, 記録, 壁時計の秒, CPU 秒) を返す。"""
    seed_everything(seed)
    model = GPT(_gpt_config(cfg, _vocab_size(codec)))
    train_config = _train_config(
        cfg.lr,
        cfg.min_lr,
        cfg.warmup_steps,
        cfg.max_steps,
        cfg.weight_decay,
        betas=(0.9, cfg.beta2),
        grad_clip=cfg.grad_clip,
        eval_interval=cfg.eval_interval,
        eval_batches=cfg.eval_batches,
        seed=seed,
        device=device,
        progress=progress,
        out_dir=out_dir,
    )
    trainer = Trainer(
        model,
        train_config,
        random_windows(train_ids, cfg.block_size, cfg.batch_size),
        lm_loss,
        val_data=random_windows(val_ids, cfg.block_size, cfg.batch_size),
    )
    history, seconds, cpu_seconds = _timed_train(trainer)
    return model, history, seconds, cpu_seconds


def _mean_speed(history: list[dict[str, Any]]) -> float | None:
    speeds = [r["tokens_per_sec"] for r in history if "tokens_per_sec" in r]
    return sum(speeds) / len(speeds) if speeds else None


def train_minilang_lm(
    *,
    config: MiniLangLMConfig | None = None,
    sampling: SamplingConfig | None = None,
    seed: int = 0,
    out_dir: PathLike | None = None,
    device: str = "auto",
    progress: bool = True,
) -> LMResult:
    """ミニ言語のプログラム集で GPT を学習し、書かせたプログラムを測る。

    コーパスは tasks.make_program_splits で作ったプログラムを 1 行に
    1 つ並べたもの。学習の後、改行 1 文字から sampling の設定で
    n_samples 本を生成し、完成した行（最後の改行より前）をパーサに
    かけて、受理した割合（acceptance_rate）を測る。
    """
    cfg = config or MINILANG_LM_CONFIG
    smp = sampling or MINILANG_SAMPLING
    programs = make_program_splits(
        seed=seed,
        n_train=cfg.n_programs,
        n_valid=cfg.n_valid_programs,
        max_statements=cfg.max_statements,
        max_depth=cfg.max_depth,
        max_len=cfg.max_program_len,
    )
    train_text = to_corpus(programs.train)
    val_text = to_corpus(programs.valid)
    vocab = CharVocab.from_texts([train_text, val_text])
    train_ids = torch.tensor(vocab.encode(train_text))
    model, history, seconds, cpu_seconds = _train_gpt(
        vocab,
        train_ids,
        torch.tensor(vocab.encode(val_text)),
        cfg,
        seed=seed,
        out_dir=out_dir,
        device=device,
        progress=progress,
    )
    # 文脈を削りながら長く生成すると行の頭が欠けるので、1 列は
    # ブロック長に収める
    smp = replace(
        smp, max_new_tokens=min(smp.max_new_tokens, cfg.block_size - 1)
    )
    texts = generate_text(
        model,
        vocab,
        "\n",
        max_new_tokens=smp.max_new_tokens,
        temperature=smp.temperature,
        top_k=smp.top_k,
        top_p=smp.top_p,
        n_samples=smp.n_samples,
        seed=smp.seed,
    )
    # 最後の改行より後ろは、長さの上限で打ち切られた書きかけの行
    lines = [line for text in texts for line in split_programs(text)]
    accepted = [line for line in lines if _parses(line)]
    known = set(programs.train)
    result = LMResult(
        name="minilang",
        seed=seed,
        config=cfg,
        tokenizer="char-vocab",
        vocab_size=len(vocab),
        n_train_tokens=len(train_ids),
        steps=cfg.max_steps,
        train_seconds=seconds,
        cpu_seconds=cpu_seconds,
        n_params=_count_params(model),
        val_loss=_last(history, "val_loss"),
        tokens_per_sec=_mean_speed(history),
        samples=lines[:20],
        history=history,
        model=model,
        codec=vocab,
        sampling=asdict(smp),
        n_generated_programs=len(lines),
        acceptance_rate=acceptance_rate(lines) if lines else 0.0,
        novel_rate=(
            sum(p not in known for p in accepted) / len(accepted)
            if accepted
            else None
        ),
        run_rate=(
            sum(_runs(line) for line in lines) / len(lines)
            if lines
            else None
        ),
    )
    if out_dir is not None:
        result.save(out_dir)
    return result


def _parses(text: str) -> bool:
    try:
        parse(text)
    except MiniLangError:
        return False
    return True


def _runs(text: str) -> bool:
    try:
        evaluate(parse(text))
    except MiniLangError:
        return False
    return True


def make_text_tokenizer(
    text: str, kind: str = "char", *, vocab_size: int = 512
) -> Tokenizer:
    """テキストからトークナイザを学習する。kind は "char" か "bpe"。

    bpe の学習は純粋な Python で遅いので、先頭の 20 万文字だけを
    使う（語彙を決めるには十分）。
    """
    if kind == "char":
        char = CharTokenizer()
        char.train(text)
        return char
    if kind == "bpe":
        bpe = ByteLevelBPETokenizer()
        bpe.train(text[:200_000], vocab_size)
        return bpe
    raise ValueError(
        f"トークナイザ {kind!r} はありません。char か bpe を選んで"
        "ください。"
    )


def train_text_lm(
    path: PathLike,
    *,
    tokenizer: str = "char",
    vocab_size: int = 512,
    config: LMConfig | None = None,
    seed: int = 0,
    out_dir: PathLike | None = None,
    device: str = "auto",
    progress: bool = True,
    sampling: SamplingConfig | None = None,
) -> LMResult:
    """UTF-8 のテキストファイルで GPT を学習する。

    tokenizer="char" なら 1 文字 1 トークン、"bpe" ならバイトレベル BPE
    （語彙の大きさ vocab_size）。テキストの末尾の val_fraction を検証に
    使う。学習の後、改行から sampling の設定でテキストを生成して
    samples に入れる（max_new_tokens=0 なら生成しない）。
    """
    cfg = config or TEXT_LM_CONFIG
    smp = sampling or TEXT_SAMPLING
    text = Path(path).read_text(encoding="utf-8")
    if not text:
        raise ValueError(f"{os.fspath(path)} は空のファイルです。")
    codec = make_text_tokenizer(text, tokenizer, vocab_size=vocab_size)
    ids = torch.tensor(codec.encode(text))
    n_train = int(len(ids) * (1 - cfg.val_fraction))
    model, history, seconds, cpu_seconds = _train_gpt(
        codec,
        ids[:n_train],
        ids[n_train:],
        cfg,
        seed=seed,
        out_dir=out_dir,
        device=device,
        progress=progress,
    )
    samples = (
        generate_text(
            model,
            codec,
            "\n",
            max_new_tokens=smp.max_new_tokens,
            temperature=smp.temperature,
            top_k=smp.top_k,
            top_p=smp.top_p,
            n_samples=smp.n_samples,
            seed=smp.seed,
        )
        if smp.max_new_tokens > 0
        else []
    )
    result = LMResult(
        name=Path(path).name,
        seed=seed,
        config=cfg,
        tokenizer=tokenizer,
        vocab_size=codec.vocab_size,
        n_train_tokens=n_train,
        steps=cfg.max_steps,
        train_seconds=seconds,
        cpu_seconds=cpu_seconds,
        n_params=_count_params(model),
        val_loss=_last(history, "val_loss"),
        tokens_per_sec=_mean_speed(history),
        samples=samples,
        history=history,
        model=model,
        codec=codec,
        sampling=asdict(smp),
    )
    if out_dir is not None:
        result.save(out_dir)
    return result


# =====================================================================
# 共通の部品: 学習の設定、時間の計測、結果とモデルの保存・読み込み
# =====================================================================


def _train_config(
    lr: float,
    min_lr: float,
    warmup_steps: int,
    max_steps: int,
    weight_decay: float,
    *,
    eval_interval: int,
    eval_batches: int,
    seed: int,
    device: str,
    progress: bool,
    out_dir: PathLike | None,
    betas: tuple[float, float] = (0.9, 0.98),
    grad_clip: float = 1.0,
) -> TrainConfig:
    metrics = None if out_dir is None else Path(out_dir) / METRICS_FILE
    return TrainConfig(
        lr=lr,
        min_lr=min_lr,
        weight_decay=weight_decay,
        betas=betas,
        warmup_steps=warmup_steps,
        max_steps=max_steps,
        grad_clip=grad_clip,
        eval_interval=eval_interval,
        eval_batches=eval_batches,
        log_interval=min(10, max_steps),
        metrics_path=None if metrics is None else os.fspath(metrics),
        # 途中から再開はしない。保存するのは学習の後のモデルだけ
        checkpoint_path=None,
        seed=seed,
        device=device,
        progress=progress,
    )


def _timed_train(
    trainer: Trainer,
) -> tuple[list[dict[str, Any]], float, float]:
    """学習して (記録, 壁時計の秒, このプロセスの CPU 秒) を返す。"""
    wall, cpu = time.perf_counter(), time.process_time()
    history = trainer.train()
    return (
        history,
        time.perf_counter() - wall,
        time.process_time() - cpu,
    )


def _count_params(model: nn.Module) -> int:
    # 共有した重み（埋め込みと出力層）は 1 度だけ数える
    return sum(p.numel() for p in model.parameters())


def _last(history: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in history if key in r]
    return float(values[-1]) if values else None


def _result_dict(result: Any, skip: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(result):
        if f.name in skip:
            continue
        value = getattr(result, f.name)
        out[f.name] = asdict(value) if f.name == "config" else value
    return out


def _save_result(
    out_dir: PathLike,
    result: dict[str, Any],
    model: Transformer | GPT,
    codec: TextCodec,
) -> None:
    """結果の全体を result.json に、要約をモデルと一緒に model.pt に書く。

    学習曲線（history）と例（examples・samples）は大きいので、
    model.pt の要約には入れない。
    """
    out = Path(out_dir)
    _write_json(out / RESULT_FILE, result)
    summary = {
        k: v
        for k, v in result.items()
        if k not in ("history", "examples", "samples")
    }
    save_model(out / MODEL_FILE, model, codec, meta=summary)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    path.write_text(text + "\n", encoding="utf-8")


def tokenizer_state(codec: TextCodec) -> dict[str, Any]:
    """語彙やトークナイザを、チェックポイントに入れられる形にする。"""
    if isinstance(codec, CharVocab):
        # 先頭の 3 つは特殊トークンで、CharVocab が自分で足す
        return {"type": "CharVocab", "chars": codec.itos[3:]}
    # トークナイザの保存形式は JSON のファイルなので、一時ファイルを
    # 経由して文字列として持つ
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "tokenizer.json"
        codec.save(file)
        text = file.read_text(encoding="utf-8")
    return {"type": type(codec).__name__, "json": text}


_TOKENIZER_CLASSES: dict[str, type[Tokenizer]] = {
    "CharTokenizer": CharTokenizer,
    "ByteLevelBPETokenizer": ByteLevelBPETokenizer,
}


def tokenizer_from_state(state: dict[str, Any]) -> TextCodec:
    """tokenizer_state の逆。"""
    kind = state.get("type")
    if kind == "CharVocab":
        return CharVocab(state["chars"])
    if kind in _TOKENIZER_CLASSES:
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / "tokenizer.json"
            file.write_text(state["json"], encoding="utf-8")
            return _TOKENIZER_CLASSES[kind].load(file)
    raise ValueError(f"トークナイザの種類 {kind!r} を知りません。")


def save_model(
    path: PathLike,
    model: Transformer | GPT,
    codec: TextCodec,
    *,
    meta: dict[str, Any] | None = None,
) -> None:
    """モデルの設定・重み・語彙を 1 つのファイルに保存する。

    Trainer のチェックポイント（再開のための、オプティマイザや乱数の
    状態を含むもの）とは違い、推論に要るものだけを入れる。
    """
    kind = "seq2seq" if isinstance(model, Transformer) else "gpt"
    state = {
        "kind": kind,
        "model_config": asdict(model.config),
        "tokenizer": tokenizer_state(codec),
        "model": model.state_dict(),
        "meta": meta or {},
    }
    save_checkpoint(path, state)


@dataclass
class LoadedModel:
    """load_model で読んだモデルと、その語彙と記録。"""

    kind: str  # "seq2seq" か "gpt"
    model: Transformer | GPT
    codec: TextCodec
    meta: dict[str, Any]


def load_model(path: PathLike, device: str = "cpu") -> LoadedModel:
    """save_model で保存したモデルを読み、評価モードにして返す。"""
    state = load_checkpoint(path)
    kind = state.get("kind")
    if kind not in ("seq2seq", "gpt"):
        raise CheckpointError(
            f"{os.fspath(path)} にはモデルの設定が入っていません（学習の"
            "途中経過を保存した Trainer のチェックポイントなど）。"
            "train-task か train-lm が書いた model.pt を指定してください。"
        )
    try:
        codec = tokenizer_from_state(state["tokenizer"])
        model: Transformer | GPT
        if kind == "seq2seq":
            model = Transformer(TransformerConfig(**state["model_config"]))
        else:
            model = GPT(GPTConfig(**state["model_config"]))
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"{os.fspath(path)} のモデルの設定か重みが壊れています"
            f"（{type(e).__name__}）。学習し直してください。"
        ) from e
    model.to(select_device(device)).eval()
    return LoadedModel(kind, model, codec, dict(state.get("meta", {})))
