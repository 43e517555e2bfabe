"""チェックポイント: 学習の状態をファイルに保存し、安全に読み戻す。

学習は何時間も続くことがあり、途中で落ちることもある。落ちても最後の
チェックポイントから続けられるように、ここでは次の 3 つを守る。

1. 書き込みは一時ファイルに行い、書き終えてから ``os.replace`` で
   差し替える。差し替えは不可分（atomic）なので、書き込みの途中で
   落ちても前のチェックポイントは壊れない。
2. 読み込みは ``torch.load(weights_only=True)`` で行う。pickle は読み込む
   だけで任意のコードを実行できるので、テンソルと基本型しか復元しない。
3. 乱数の状態（Python・NumPy・torch・CUDA）も保存する。そのために
   ``weights_only`` で読める形（テンソル・整数・文字列・タプル）に変換する。
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

# ファイルの先頭に書く目印。別物のファイルを読み込んだときに気付くため
FORMAT = "easy_transformer.checkpoint"
VERSION = 1


class CheckpointError(Exception):
    """チェックポイントが読めないときの例外。メッセージに直し方を書く。"""


# ---------------------------------------------------------------------
# 乱数の状態
# ---------------------------------------------------------------------


def get_rng_state() -> dict[str, Any]:
    """すべての乱数生成器の状態を、``weights_only`` で読める形で返す。"""
    version, py_state, gauss = random.getstate()
    key, keys, pos, has_gauss, cached = cast(
        "tuple[str, np.ndarray[Any, Any], int, int, float]",
        np.random.get_state(legacy=True),
    )
    state: dict[str, Any] = {
        # Python の状態は 625 個の整数。リストのままでも読めるが、
        # テンソルにすると小さく、速く保存できる
        "python": (version, torch.tensor(py_state), gauss),
        # NumPy の状態は uint32 の ndarray を含み、ndarray は
        # weights_only では読めないので int64 のテンソルに変換する
        "numpy": (
            key,
            torch.from_numpy(keys.astype(np.int64)),
            pos,
            has_gauss,
            cached,
        ),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if torch.backends.mps.is_available():
        state["mps"] = torch.mps.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """``get_rng_state`` で取った状態に、すべての乱数生成器を戻す。"""
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state.tolist()), gauss))
    key, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(
        (key, keys.numpy().astype(np.uint32), pos, has_gauss, cached)
    )
    torch.set_rng_state(state["torch"])
    # GPU の数が保存したときと違えば、CUDA の状態は戻せない（戻さない）
    cuda = state.get("cuda")
    if (
        cuda is not None
        and torch.cuda.is_available()
        and len(cuda) == torch.cuda.device_count()
    ):
        torch.cuda.set_rng_state_all(cuda)
    if "mps" in state and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"])


# ---------------------------------------------------------------------
# 保存と読み込み
# ---------------------------------------------------------------------


def save_checkpoint(
    path: str | os.PathLike[str], state: dict[str, Any]
) -> None:
    """``state`` を ``path`` に不可分に保存する。

    まず同じフォルダの ``<名前>.tmp`` に書き、ディスクまで書き出して
    （fsync）から ``os.replace`` で差し替える。同じフォルダに置くのは、
    ``os.replace`` が不可分なのは同じファイルシステムの中だけだから。
    一時ファイルの名前を固定にしておくと、落ちて残った一時ファイルは
    次の保存で上書きされ、ゴミが溜まらない。
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    payload = {"format": FORMAT, "version": VERSION, **state}
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # 例外で抜けるとき（Ctrl-C を含む）は一時ファイルを片付ける。
        # プロセスごと落ちたときに残るものは、次の保存で上書きされる
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """差し替え（フォルダの中身の変更）そのものをディスクに書き出す。"""
    if os.name != "posix":  # Windows ではフォルダを開けない
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(
    path: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """``save_checkpoint`` で保存したファイルを読み、中身の辞書を返す。

    テンソルはまず ``map_location``（既定は CPU）に置く。モデルや
    オプティマイザの ``load_state_dict`` が正しいデバイスへ移すので、
    保存したときと別のデバイスでも読める。
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"チェックポイント {path} がありません。"
            "パスを確かめてください。"
        )
    # torch.save は zip 形式で書く。zip として読めなければ、書きかけで
    # 途切れたか、まったく別のファイル
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} は壊れているか、PyTorch の保存形式ではありません。"
            "書き込みの途中で止まった可能性があります。ひとつ前の"
            "チェックポイントを使うか、最初から学習し直してください。"
        )
    try:
        state = torch.load(
            path, map_location=map_location, weights_only=True
        )
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path} には、テンソルや基本型のほかに任意のオブジェクトが"
            "入っているので読み込みを拒否しました（読むだけで任意のコードを"
            "実行し得るため）。easy_transformer の save_checkpoint で"
            "保存し直してください。"
        ) from e
    except Exception as e:
        raise CheckpointError(
            f"{path} は zip としては読めますが、中身が壊れています"
            f"（{type(e).__name__}: {e}）。ひとつ前のチェックポイントを"
            "使うか、最初から学習し直してください。"
        ) from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} は easy_transformer のチェックポイントではありません"
            "（例えば model.state_dict() だけを保存したファイル）。"
            "重みだけなら torch.load(path, weights_only=True) で読み、"
            "model.load_state_dict() に渡してください。"
        )
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"{path} の形式の版 {state.get('version')} は、この"
            f"easy_transformer が読める版 {VERSION} と違います。"
            "保存したときと同じ版の easy_transformer で読んでください。"
        )
    return state
