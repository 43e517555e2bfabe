"""checkpoint（保存・読み込み・乱数の状態）のテスト。"""

from __future__ import annotations

import pickle
import random
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import easy_transformer.checkpoint as ckpt
from easy_transformer.checkpoint import (
    CheckpointError,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)


def sample_state(step: int) -> dict[str, Any]:
    return {
        "model": {"w": torch.full((2, 3), float(step))},
        "step": step,
        "config": {"lr": 1e-3, "betas": (0.9, 0.95), "path": None},
        "rng": [get_rng_state()],
    }


def test_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ckpt.pt"  # フォルダも作る
    save_checkpoint(path, sample_state(3))
    state = load_checkpoint(path)
    assert state["step"] == 3
    assert torch.equal(state["model"]["w"], torch.full((2, 3), 3.0))
    assert state["config"]["betas"] == (0.9, 0.95)
    assert not path.with_name("ckpt.pt.tmp").exists()


def test_rng_state_roundtrip_through_file(tmp_path: Path) -> None:
    """Python・NumPy・torch の乱数が、保存した時点から同じ列を出す。"""

    def draw() -> tuple[Any, ...]:
        return (
            random.random(),
            random.gauss(0, 1),
            np.random.rand(3),
            np.random.randn(),
            torch.rand(3),
        )

    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    random.gauss(0, 1)  # gauss の持ち越し値がある状態も保存する
    np.random.randn()
    save_checkpoint(tmp_path / "c.pt", {"rng": get_rng_state()})
    expected = draw()
    draw()  # 乱数を進めておく
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    got = draw()
    assert got[:2] == expected[:2]
    np.testing.assert_array_equal(got[2], expected[2])
    assert got[3] == expected[3]
    assert torch.equal(got[4], expected[4])


def test_overwrite_replaces_previous(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, sample_state(1))
    save_checkpoint(path, sample_state(2))
    assert load_checkpoint(path)["step"] == 2


def test_error_while_writing_keeps_previous(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, sample_state(1))

    def broken_save(obj: object, f: Any) -> None:
        f.write(b"PK\x03\x04 half written")
        raise KeyboardInterrupt  # Ctrl-C で止められた

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, sample_state(2))
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert not path.with_name("ckpt.pt.tmp").exists()  # 片付けた


def test_crash_while_writing_keeps_previous(tmp_path: Path) -> None:
    """一時ファイルを書いている途中でプロセスごと落ちても、前が読める。"""
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, sample_state(1))
    script = textwrap.dedent(f"""
        import os, torch
        import easy_transformer.checkpoint as ckpt

        def crash(obj, f):
            f.write(b"PK\\x03\\x04 half written")
            f.flush()
            os._exit(9)  # 後始末なしで落ちる

        ckpt.torch.save = crash
        ckpt.save_checkpoint({str(path)!r}, {{"step": 2}})
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 9, done.stderr
    tmp = path.with_name("ckpt.pt.tmp")
    assert tmp.exists()  # 書きかけが残っている
    assert load_checkpoint(path)["step"] == 1
    with pytest.raises(CheckpointError, match="壊れている"):
        load_checkpoint(tmp)
    # 残った一時ファイルは、次の保存で上書きされる
    save_checkpoint(path, sample_state(3))
    assert load_checkpoint(path)["step"] == 3
    assert not tmp.exists()


class Exploit:
    """読み込むだけで、ファイルを作るコマンドが走る pickle。"""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_rejects_arbitrary_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save(
        {
            "format": ckpt.FORMAT,
            "version": ckpt.VERSION,
            "model": Exploit(marker),
        },
        path,
    )
    with pytest.raises(CheckpointError, match="拒否しました"):
        load_checkpoint(path)
    assert not marker.exists()  # コードは走っていない


def test_rejects_plain_pickle(tmp_path: Path) -> None:
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"step": 1, "arr": np.zeros(3)}))
    with pytest.raises(CheckpointError, match="PyTorch の保存形式"):
        load_checkpoint(path)


def test_rejects_numpy_arrays(tmp_path: Path) -> None:
    """ndarray も weights_only では読めない（乱数の状態を変換する理由）。"""
    path = tmp_path / "np.pt"
    torch.save(
        {
            "format": ckpt.FORMAT,
            "version": ckpt.VERSION,
            "keys": np.zeros(3),
        },
        path,
    )
    with pytest.raises(CheckpointError, match="拒否しました"):
        load_checkpoint(path)


def test_truncated_file_is_reported_as_broken(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, sample_state(1))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="書き込みの途中で"):
        load_checkpoint(path)


def test_text_file_is_reported_as_broken(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("これはチェックポイントではない", encoding="utf-8")
    with pytest.raises(CheckpointError, match="PyTorch の保存形式"):
        load_checkpoint(path)


def test_plain_state_dict_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(CheckpointError, match="load_state_dict"):
        load_checkpoint(path)


def test_other_version_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "future.pt"
    torch.save({"format": ckpt.FORMAT, "version": ckpt.VERSION + 1}, path)
    with pytest.raises(CheckpointError, match="版"):
        load_checkpoint(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ありません"):
        load_checkpoint(tmp_path / "nothing.pt")


def test_other_zip_is_reported_as_broken(tmp_path: Path) -> None:
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "zip だが torch.save の形ではない")
    with pytest.raises(CheckpointError, match="中身が壊れています"):
        load_checkpoint(path)
