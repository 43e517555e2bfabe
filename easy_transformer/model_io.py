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
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeAlias

from easy_transformer.checkpoint import (
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from easy_transformer.gpt import GPT, GPTConfig
from easy_transformer.tasks import CharVocab
from easy_transformer.tokenizer import (
    ByteLevelBPETokenizer,
    CharTokenizer,
    Tokenizer,
)
from easy_transformer.training import select_device
from easy_transformer.transformer import Transformer, TransformerConfig

PathLike: TypeAlias = str | os.PathLike[str]
# テキストと ID を行き来するもの。課題の語彙か、トークナイザ
TextCodec: TypeAlias = CharVocab | Tokenizer

MODEL_FILE = "model.pt"


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
