"""言語モデルの実験: GPT を学習し、テキストを生成する。

    result = train_minilang_lm()            # ミニ言語のプログラムを書く GPT
    result = train_text_lm("input.txt")     # 任意のテキストで GPT

設定（``LMConfig``・``SamplingConfig``）、損失とバッチの切り出し、
生成、学習の順に並ぶ。既定の設定は 2 コアの CPU で数分の学習に
収まるように決めた（``benchmarks/bench_minilang_lm.py``、
``benchmarks/bench_shakespeare.py``）。``TINY_*`` の極小の設定は、
テストと動作確認のためのもので、ほとんど何も学習しない。

``out_dir`` を渡すと、学習曲線（``metrics.jsonl``）、結果
（``result.json``）、モデル（``model.pt``）をそこに書く。
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeAlias

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from easy_transformer._experiment import (
    count_params,
    last_value,
    make_train_config,
    result_dict,
    save_result,
    timed_train,
)
from easy_transformer.gpt import GPT, GPTConfig
from easy_transformer.minilang import MiniLangError, evaluate, parse
from easy_transformer.tasks import (
    ProgramSplits,
    acceptance_rate,
    accepts,
    make_program_splits,
    make_vocab,
    split_programs,
    to_corpus,
)
from easy_transformer.tokenizer import (
    ByteLevelBPETokenizer,
    CharTokenizer,
    Tokenizer,
)
from easy_transformer.training import Trainer, seed_everything

PathLike: TypeAlias = str | os.PathLike[str]


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
    # 位置の表し方: "learned"（GPT-2 の学習する位置埋め込み）か "rope"
    # （第17章）。tinyshakespeare では rope のほうが検証損失が低い
    # （付録「ベンチマークの結果」）
    position: str = "learned"
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


@torch.no_grad()
def generate_text(
    model: GPT,
    codec: Tokenizer,
    prompt: str,
    *,
    max_new_tokens: int = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    do_sample: bool = True,
    n_samples: int = 1,
    seed: int = 0,
    stop: Sequence[str] = (),
) -> list[str]:
    """prompt に続くテキストを n_samples 本作り、続きの部分だけを返す。

    GPT は block_size より長い列を読めないので、長く生成するときは
    直近の部分だけを文脈に残して続ける（古い部分は忘れる）。
    repetition_penalty（1 より大きいと、文脈に出たトークンを選び
    にくくする）は GPT.generate と同じ意味で、文脈の中だけを見る。
    stop の文字列のどれかが出たら、その手前で切る（stop 自身は含め
    ない）。全部の列に出たら、そこで生成をやめる。乱数は seed から
    作るので、同じ引数なら同じテキストになる。
    """
    ids = _encode_prompt(codec, prompt)
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()
    block = model.config.block_size
    out = torch.tensor([ids] * n_samples, device=device)
    remaining = max_new_tokens
    texts = [""] * n_samples
    try:
        while remaining > 0:
            # 文脈は最大でも block の半分まで削り、1 回に半分以上を作る
            keep = min(out.size(1), block - min(remaining, block // 2))
            n_new = min(remaining, block - keep)
            new = model.generate(
                out[:, out.size(1) - keep :],
                n_new,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                repetition_penalty=repetition_penalty,
                do_sample=do_sample,
                generator=generator,
            )
            out = torch.cat([out, new[:, keep:]], dim=1)
            remaining -= n_new
            texts = _decode_rows(codec, out[:, len(ids) :])
            if stop and all(_find_stop(t, stop) >= 0 for t in texts):
                break
    finally:
        model.train(was_training)
    return [_cut_at_stop(t, stop) for t in texts]


def _encode_prompt(codec: Tokenizer, prompt: str) -> list[int]:
    ids = codec.encode(prompt)
    if not ids:
        raise ValueError(
            "プロンプトが空です。1 文字以上のプロンプトを渡して"
            "ください（例えば改行 1 文字）。"
        )
    return ids


def _decode_rows(codec: Tokenizer, rows: Tensor) -> list[str]:
    # 特殊トークン（学習のテキストには無い）は文字列にしない
    return [
        codec.decode(row.tolist(), skip_special_tokens=True) for row in rows
    ]


def _find_stop(text: str, stop: Sequence[str]) -> int:
    """stop の文字列が最初に現れる位置。どれも無ければ -1。"""
    found = [i for s in stop if s and (i := text.find(s)) >= 0]
    return min(found) if found else -1


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    i = _find_stop(text, stop)
    return text if i < 0 else text[:i]


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
    codec: Tokenizer = field(repr=False)
    sampling: dict[str, Any] | None = None  # samples を作った設定
    # ミニ言語だけ: 生成したプログラムのうちパーサが受理した割合など
    n_generated_programs: int | None = None
    acceptance_rate: float | None = None
    novel_rate: float | None = None  # 受理したうち学習データに無いもの
    # 評価まで成功した割合。パースできても、未定義の変数や 0 除算で
    # 止まるプログラムは数えない（構文は正しいが意味が正しくない）
    run_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return result_dict(self, skip=("model", "codec"))

    def save(self, out_dir: PathLike) -> None:
        """out_dir に result.json と model.pt を書く。"""
        save_result(out_dir, self.to_dict(), self.model, self.codec)


def _gpt_config(config: LMConfig, vocab_size: int) -> GPTConfig:
    return GPTConfig(
        vocab_size=vocab_size,
        block_size=config.block_size,
        n_layers=config.n_layers,
        n_heads=config.n_heads,
        d_model=config.d_model,
        dropout=config.dropout,
        bias=config.bias,
        position=config.position,
    )


@dataclass
class _Trained:
    """_train_gpt の結果。"""

    model: GPT
    history: list[dict[str, Any]]
    steps: int  # 実際に学習したステップ数（Trainer の step）
    seconds: float  # 壁時計の秒
    cpu_seconds: float  # このプロセスの CPU 秒


def _train_gpt(
    codec: Tokenizer,
    train_ids: Tensor,
    val_ids: Tensor,
    cfg: LMConfig,
    *,
    seed: int,
    out_dir: PathLike | None,
    device: str,
    progress: bool,
    resume: bool,
) -> _Trained:
    """GPT を作って学習する。"""
    seed_everything(seed)
    model = GPT(_gpt_config(cfg, codec.vocab_size))
    train_config = make_train_config(
        cfg,
        betas=(0.9, cfg.beta2),
        grad_clip=cfg.grad_clip,
        seed=seed,
        device=device,
        progress=progress,
        out_dir=out_dir,
        resume=resume,
    )
    trainer = Trainer(
        model,
        train_config,
        random_windows(train_ids, cfg.block_size, cfg.batch_size),
        lm_loss,
        val_data=random_windows(val_ids, cfg.block_size, cfg.batch_size),
    )
    history, seconds, cpu_seconds = timed_train(trainer)
    return _Trained(model, history, trainer.step, seconds, cpu_seconds)


def _mean_speed(history: list[dict[str, Any]]) -> float | None:
    speeds = [r["tokens_per_sec"] for r in history if "tokens_per_sec" in r]
    return sum(speeds) / len(speeds) if speeds else None


def _lm_result(
    trained: _Trained,
    codec: Tokenizer,
    *,
    name: str,
    tokenizer: str,
    config: LMConfig,
    seed: int,
    n_train_tokens: int,
    samples: list[str],
    sampling: SamplingConfig,
    out_dir: PathLike | None,
    **program_scores: Any,
) -> LMResult:
    """学習の結果を LMResult にまとめ、out_dir があれば保存する。"""
    result = LMResult(
        name=name,
        seed=seed,
        config=config,
        tokenizer=tokenizer,
        vocab_size=codec.vocab_size,
        n_train_tokens=n_train_tokens,
        steps=trained.steps,
        train_seconds=trained.seconds,
        cpu_seconds=trained.cpu_seconds,
        n_params=count_params(trained.model),
        val_loss=last_value(trained.history, "val_loss"),
        tokens_per_sec=_mean_speed(trained.history),
        samples=samples,
        history=trained.history,
        model=trained.model,
        codec=codec,
        sampling=asdict(sampling),
        **program_scores,
    )
    if out_dir is not None:
        result.save(out_dir)
    return result


def _sample(model: GPT, codec: Tokenizer, smp: SamplingConfig) -> list[str]:
    """改行 1 文字から、smp の設定でテキストを生成する。"""
    if smp.max_new_tokens <= 0:
        return []
    return generate_text(
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


def train_minilang_lm(
    *,
    config: MiniLangLMConfig | None = None,
    sampling: SamplingConfig | None = None,
    seed: int = 0,
    out_dir: PathLike | None = None,
    device: str = "auto",
    progress: bool = True,
    resume: bool = False,
) -> LMResult:
    """ミニ言語のプログラム集で GPT を学習し、書かせたプログラムを測る。

    コーパスは tasks.make_program_splits で作ったプログラムを 1 行に
    1 つ並べたもの。学習の後、改行 1 文字から sampling の設定で
    n_samples 本を生成し、完成した行（最後の改行より前）をパーサに
    かけて、受理した割合（acceptance_rate）を測る。out_dir と resume
    の意味は seq2seq_experiment.train_seq2seq と同じ。
    """
    cfg = config or MINILANG_LM_CONFIG
    programs = _make_programs(cfg, seed)
    train_text = to_corpus(programs.train)
    val_text = to_corpus(programs.valid)
    vocab = make_vocab([train_text, val_text])
    train_ids = torch.tensor(vocab.encode(train_text))
    trained = _train_gpt(
        vocab,
        train_ids,
        torch.tensor(vocab.encode(val_text)),
        cfg,
        seed=seed,
        out_dir=out_dir,
        device=device,
        progress=progress,
        resume=resume,
    )
    # 文脈を削りながら長く生成すると行の頭が欠けるので、1 列は
    # ブロック長に収める
    smp = sampling or MINILANG_SAMPLING
    smp = replace(
        smp, max_new_tokens=min(smp.max_new_tokens, cfg.block_size - 1)
    )
    texts = _sample(trained.model, vocab, smp)
    # 最後の改行より後ろは、長さの上限で打ち切られた書きかけの行
    lines = [line for text in texts for line in split_programs(text)]
    return _lm_result(
        trained,
        vocab,
        name="minilang",
        tokenizer="char-vocab",
        config=cfg,
        seed=seed,
        n_train_tokens=len(train_ids),
        samples=lines[:20],
        sampling=smp,
        out_dir=out_dir,
        **score_programs(lines, set(programs.train)),
    )


def _make_programs(cfg: MiniLangLMConfig, seed: int) -> ProgramSplits:
    return make_program_splits(
        seed=seed,
        n_train=cfg.n_programs,
        n_valid=cfg.n_valid_programs,
        max_statements=cfg.max_statements,
        max_depth=cfg.max_depth,
        max_len=cfg.max_program_len,
    )


def score_programs(lines: list[str], known: set[str]) -> dict[str, Any]:
    """生成したプログラム（1 行 1 つ）の出来を測る。

    返す辞書は LMResult の n_generated_programs、acceptance_rate
    （パーサが受理した割合）、novel_rate（受理したうち known に無い
    割合）、run_rate（評価まで成功した割合）。
    """
    accepted = [line for line in lines if accepts(line)]
    return {
        "n_generated_programs": len(lines),
        "acceptance_rate": acceptance_rate(lines) if lines else 0.0,
        "novel_rate": (
            sum(p not in known for p in accepted) / len(accepted)
            if accepted
            else None
        ),
        "run_rate": (
            sum(_runs(line) for line in lines) / len(lines)
            if lines
            else None
        ),
    }


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
    resume: bool = False,
) -> LMResult:
    """UTF-8 のテキストファイルで GPT を学習する。

    tokenizer="char" なら 1 文字 1 トークン、"bpe" ならバイトレベル BPE
    （語彙の大きさ vocab_size）。テキストの末尾の val_fraction を検証に
    使う。学習の後、改行から sampling の設定でテキストを生成して
    samples に入れる（max_new_tokens=0 なら生成しない）。out_dir と
    resume の意味は seq2seq_experiment.train_seq2seq と同じ。
    """
    cfg = config or TEXT_LM_CONFIG
    smp = sampling or TEXT_SAMPLING
    text = Path(path).read_text(encoding="utf-8")
    if not text:
        raise ValueError(f"{os.fspath(path)} は空のファイルです。")
    codec = make_text_tokenizer(text, tokenizer, vocab_size=vocab_size)
    ids = torch.tensor(codec.encode(text))
    n_train = int(len(ids) * (1 - cfg.val_fraction))
    trained = _train_gpt(
        codec,
        ids[:n_train],
        ids[n_train:],
        cfg,
        seed=seed,
        out_dir=out_dir,
        device=device,
        progress=progress,
        resume=resume,
    )
    return _lm_result(
        trained,
        codec,
        name=Path(path).name,
        tokenizer=tokenizer,
        config=cfg,
        seed=seed,
        n_train_tokens=n_train,
        samples=_sample(trained.model, codec, smp),
        sampling=smp,
        out_dir=out_dir,
    )
