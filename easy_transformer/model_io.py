"""学習したモデルとトークナイザの保存と読み込み。

``save_model`` は推論に要るもの（モデルの設定・重み・語彙）だけを
1 つのファイルに書き、``load_model`` がそれを読み戻す。学習を再開する
ための Trainer のチェックポイント（オプティマイザや乱数の状態を含む）
とは別のもの。

    save_model("runs/rpn/model.pt", model, vocab)
    loaded = load_model("runs/rpn/model.pt")
    loaded.model, loaded.codec
"""

from __future__ import annotations

import os
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, TypeAlias

from easy_transformer.checkpoint import (
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from easy_transformer.code_tokenizer import CodeTokenizer
from easy_transformer.gpt import GPT, GPTConfig
from easy_transformer.tasks import TASK_SPECIAL_TOKENS
from easy_transformer.tokenizer import (
    ByteLevelBPETokenizer,
    CharTokenizer,
    Tokenizer,
    WhitespaceTokenizer,
)
from easy_transformer.training import select_device
from easy_transformer.transformer import Transformer, TransformerConfig

PathLike: TypeAlias = str | os.PathLike[str]

MODEL_FILE = "model.pt"


def tokenizer_state(codec: Tokenizer) -> dict[str, Any]:
    """トークナイザを、チェックポイントに入れられる形にする。"""
    return {"type": type(codec).__name__, "json": codec.to_json()}


_TOKENIZER_CLASSES: dict[str, type[Tokenizer]] = {
    cls.__name__: cls
    for cls in (
        CharTokenizer,
        WhitespaceTokenizer,
        ByteLevelBPETokenizer,
        CodeTokenizer,
    )
}


def tokenizer_from_state(state: dict[str, Any]) -> Tokenizer:
    """tokenizer_state の逆。

    知らない種類や壊れた JSON は ValueError（直し方の分かる
    メッセージ付き）。
    """
    kind = state.get("type")
    if kind == "CharVocab":
        # 文字単位の語彙が CharTokenizer にまとまる前の形式（文字の
        # 一覧だけを持つ）。同じ ID の割り当ての語彙を作る
        return CharTokenizer.from_chars(state["chars"], TASK_SPECIAL_TOKENS)
    if kind in _TOKENIZER_CLASSES:
        return _TOKENIZER_CLASSES[kind].from_json(
            state["json"], source=f"保存した {kind}"
        )
    raise ValueError(f"トークナイザの種類 {kind!r} を知りません。")


def save_model(
    path: PathLike,
    model: Transformer | GPT,
    codec: Tokenizer,
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
    codec: Tokenizer
    meta: dict[str, Any]


def _names(names: set[str]) -> str:
    return ", ".join(sorted(names))


def _config_problem(config_cls: type[Any], values: dict[str, Any]) -> str:
    """設定の dataclass に渡せない値の説明。渡せるなら空文字列。"""
    all_fields = fields(config_cls)
    unknown = set(values) - {f.name for f in all_fields}
    required = {
        f.name
        for f in all_fields
        if f.default is MISSING and f.default_factory is MISSING
    }
    lacking = required - set(values)
    if unknown:
        return f"知らない設定: {_names(unknown)}"
    if lacking:
        return f"無い設定: {_names(lacking)}"
    return ""


def load_model(path: PathLike, device: str = "cpu") -> LoadedModel:
    """save_model で保存したモデルを読み、評価モードにして返す。

    中身が足りない・形が合わないファイルは CheckpointError にする。
    """
    state = load_checkpoint(path)
    kind = state.get("kind")
    if kind not in ("seq2seq", "gpt"):
        raise CheckpointError(
            f"{os.fspath(path)} にはモデルの設定が入っていません（学習の"
            "途中経過を保存した Trainer のチェックポイントなど）。"
            "train-task か train-lm が書いた model.pt を指定してください。"
        )
    broken = (
        f"{os.fspath(path)} のモデルの設定か重みが壊れています。"
        "学習し直してください。"
    )
    missing = {"model_config", "tokenizer", "model"} - set(state)
    if missing:
        raise CheckpointError(f"{broken}（無いもの: {_names(missing)}）")
    config_cls = TransformerConfig if kind == "seq2seq" else GPTConfig
    problem = _config_problem(config_cls, state["model_config"])
    if problem:
        raise CheckpointError(f"{broken}（{problem}）")
    try:
        codec = tokenizer_from_state(state["tokenizer"])
    except ValueError as e:
        raise CheckpointError(f"{broken}（語彙: {e}）") from e
    model: Transformer | GPT
    if kind == "seq2seq":
        model = Transformer(TransformerConfig(**state["model_config"]))
    else:
        model = GPT(GPTConfig(**state["model_config"]))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        # 重みの名前か形が設定と合わない（load_state_dict の例外）
        raise CheckpointError(f"{broken}（重みが設定と合わない）") from e
    model.to(select_device(device)).eval()
    return LoadedModel(kind, model, codec, dict(state.get("meta", {})))
