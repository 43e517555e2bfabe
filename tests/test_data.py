"""easy_transformer.data（同梱データの場所と SHA-256 の検査）のテスト。"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from easy_transformer import data
from easy_transformer.data import DataError, data_dir, data_path, sha256_of

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(data.KNOWN_FILES))
def test_bundled_files_match_their_recorded_hashes(name: str) -> None:
    path = data_path(name)
    assert path == ROOT / "data" / name
    assert sha256_of(path) == data.KNOWN_FILES[name]


def test_readme_lists_the_same_hashes() -> None:
    # data/README.md の表と KNOWN_FILES が食い違わないこと
    readme = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    for name, digest in data.KNOWN_FILES.items():
        assert name in readme
        assert digest in readme


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(DataError) as info:
        data_path("gpt2/merges.txt")
    message = str(info.value)
    assert "gpt2/merges.txt は同梱データにありません" in message
    for name in data.KNOWN_FILES:
        assert name in message


def test_environment_variable_moves_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "gpt2").mkdir()
    shutil.copy(data_path("gpt2/vocab.bpe"), tmp_path / "gpt2")
    monkeypatch.setenv("EASY_TRANSFORMER_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    assert data_path("gpt2/vocab.bpe") == tmp_path / "gpt2" / "vocab.bpe"


def test_missing_file_names_the_path_and_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EASY_TRANSFORMER_DATA", str(tmp_path))
    with pytest.raises(DataError) as info:
        data_path("gpt2/encoder.json")
    message = str(info.value)
    assert str(tmp_path / "gpt2" / "encoder.json") in message
    assert "EASY_TRANSFORMER_DATA" in message


def test_wrong_hash_says_what_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tinyshakespeare").mkdir()
    broken = tmp_path / "tinyshakespeare" / "input.txt"
    original = data_path("tinyshakespeare/input.txt").read_bytes()
    broken.write_bytes(original[:-1])  # 最後の 1 バイトが欠けた
    monkeypatch.setenv("EASY_TRANSFORMER_DATA", str(tmp_path))
    with pytest.raises(DataError) as info:
        data_path("tinyshakespeare/input.txt")
    message = str(info.value)
    expected = data.KNOWN_FILES["tinyshakespeare/input.txt"]
    actual = sha256_of(broken)
    assert "SHA-256 が記録と違います" in message
    assert f"記録 {expected[:16]}…" in message
    assert f"実際 {actual[:16]}…" in message
    assert f"{len(original) - 1} バイト" in message
    assert str(broken) in message
