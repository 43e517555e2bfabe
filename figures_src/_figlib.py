"""図を生成するスクリプトの共通部品。

各スクリプトは `FigureWriter(__file__)` を作り、`save(fig)` か
`save(fig, "suffix")` で保存する。ファイル名はスクリプト名から決まる
（`ch01_rnn.py` → `ch01_rnn.svg` や `ch01_rnn-suffix.svg`）ので、
本文の画像がどのスクリプトから来たかが名前で分かる。

- 同じ図を 3 つの形式で書き出す: HTML 用の SVG、PDF 用の PDF、
  EPUB 用の PNG。Sphinx は `図名.*` で参照された画像から、
  ビルダーごとに適した形式を選ぶ。
- 決定的に書く: 乱数シードを固定し、日付などのメタデータを入れない。
- 日本語のグリフが欠けたら（豆腐になったら）警告ではなくエラーにする。
"""

from __future__ import annotations

import importlib.util
import os
import random
import sys
import warnings
from pathlib import Path
from types import ModuleType

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

# 日本語フォント（IPAex ゴシック）を既定にする
import matplotlib_fontja  # noqa: F401
import numpy as np
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "book" / "_generated" / "figures"
FORMATS = ("svg", "pdf", "png")

# 欠けたグリフの警告（"Glyph 12354 ... missing from font(s)"）をエラーにする
warnings.filterwarnings("error", message=r".*[Gg]lyph .* missing from.*")

plt.rcParams.update(
    {
        # SVG 内の ID を実行ごとに変えない
        "svg.hashsalt": "easy-transformer",
        "svg.fonttype": "path",
        "pdf.fonttype": 42,  # TrueType として埋め込む
        # 負号を ASCII のハイフンで描く（U+2212 の無いフォント向け）
        "axes.unicode_minus": False,
        "figure.dpi": 100,
        "savefig.dpi": 200,
        "savefig.bbox": "tight",
        "font.size": 10,
    }
)

_METADATA = {
    "svg": {"Date": None, "Creator": None},
    "pdf": {
        "CreationDate": None,
        "ModDate": None,
        "Creator": None,
        "Producer": None,
    },
    "png": {"Software": None},
}


def seed_everything(seed: int = 0) -> None:
    """Python・NumPy・（入っていれば）PyTorch の乱数シードを固定する。"""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except (
        ImportError
    ):  # pragma: no cover - torch は必須の依存だが図だけなら無くてもよい
        return
    torch.manual_seed(seed)


class FigureWriter:
    """1 つのスクリプトが作る図を、スクリプト名を接頭辞にして保存する。"""

    def __init__(self, script_file: str) -> None:
        self.stem = Path(script_file).stem
        self.out_dir = Path(os.environ.get("ET_FIG_DIR", DEFAULT_OUT))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.written: list[Path] = []

    def path(self, suffix: str | None, fmt: str) -> Path:
        name = self.stem if not suffix else f"{self.stem}-{suffix}"
        return self.out_dir / f"{name}.{fmt}"

    def save(
        self,
        fig: Figure,
        suffix: str | None = None,
        formats: tuple[str, ...] = FORMATS,
    ) -> None:
        for fmt in formats:
            target = self.path(suffix, fmt)
            fig.savefig(target, format=fmt, metadata=_METADATA[fmt])
            self.written.append(target)
        plt.close(fig)


def load_listing(relpath: str) -> ModuleType:
    """listings/ のファイルをモジュールとして読み込む。

    名前が数字で始まるため import 文は使えない。図のスクリプトは
    本文に載せたコードをそのまま使い、同じ処理を 2 か所に書かない。
    """
    path = ROOT / "listings" / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    # dataclass は定義の途中で sys.modules からモジュールを引くので、
    # 先に登録する
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
