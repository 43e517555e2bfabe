"""リポジトリに同梱したデータ（GPT-2 の語彙と tinyshakespeare）の置き場所。

データはリポジトリの `data/` にあり、出典・ライセンス・SHA-256 は
`data/README.md` に書いてある。読み込む前に SHA-256 を確かめ、
違えば何が違うかを言うエラーにする（壊れた・別の版のファイルで
「テストは通るが数値が違う」ことを防ぐため）。

場所は環境変数 `EASY_TRANSFORMER_DATA` で変えられる。
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# data/ からの相対パス → SHA-256（data/README.md の表と同じ値）
KNOWN_FILES: dict[str, str] = {
    "gpt2/encoder.json": (
        "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
    ),
    "gpt2/vocab.bpe": (
        "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
    ),
    "tinyshakespeare/input.txt": (
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
    ),
}


class DataError(RuntimeError):
    """同梱データが見つからない、または中身が記録と違う。"""


def data_dir() -> Path:
    """データのフォルダ（既定はリポジトリの data/）。"""
    env = os.environ.get("EASY_TRANSFORMER_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "data"


def sha256_of(path: Path) -> str:
    """ファイルの SHA-256（16 進）。"""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_path(name: str) -> Path:
    """同梱データ `name`（例 "gpt2/encoder.json"）のパスを、検証して返す。

    >>> data_path("gpt2/vocab.bpe").name
    'vocab.bpe'
    """
    if name not in KNOWN_FILES:
        known = "、".join(sorted(KNOWN_FILES))
        raise DataError(
            f"{name} は同梱データにありません（あるもの: {known}）"
        )
    path = data_dir() / name
    if not path.is_file():
        raise DataError(
            f"{path} がありません。リポジトリの data/ を確かめるか、"
            "環境変数 EASY_TRANSFORMER_DATA でデータのフォルダを指定して"
            "ください（data/README.md）"
        )
    actual = sha256_of(path)
    expected = KNOWN_FILES[name]
    if actual != expected:
        raise DataError(
            f"{path} の SHA-256 が記録と違います"
            f"（記録 {expected[:16]}…、実際 {actual[:16]}…、"
            f"{path.stat().st_size} バイト）。"
            "別の版か、壊れたファイルです（data/README.md の出典から"
            "取り直してください）"
        )
    return path
