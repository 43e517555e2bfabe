"""図の共通部品（figures_src/_figlib.py）の約束を確かめる。

全部の図のスクリプトが決定的であることは、時間がかかるので
`make check-book` の tools/check_figures.py で確かめる。
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURES_SRC = str(ROOT / "figures_src")

TINY = (
    f"import sys; sys.path.insert(0, {FIGURES_SRC!r})\n"
    "import _figlib, matplotlib.pyplot as plt\n"
    "_figlib.seed_everything(0)\n"
    "import numpy as np\n"
    "fig, ax = plt.subplots(); ax.plot(np.random.randn(20))\n"
    "ax.set_title('日本語のラベル')\n"
    "_figlib.FigureWriter('tiny.py').save(fig)\n"
)


def run(code: str, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ET_FIG_DIR": str(out)}
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
    )


def test_figlib_writes_three_formats_deterministically(
    tmp_path: Path,
) -> None:
    """SVG・PDF・PNG を、日付などを入れずに毎回同じバイト列で書く。"""
    for name in ("a", "b"):
        result = run(TINY, tmp_path / name)
        assert result.returncode == 0, result.stderr
    first = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    second = {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    assert sorted(first) == ["tiny.pdf", "tiny.png", "tiny.svg"]
    assert first == second


def test_missing_glyph_is_an_error(tmp_path: Path) -> None:
    """フォントに無い文字（豆腐）は警告ではなくエラーになる。"""
    code = TINY.replace("日本語のラベル", "\\U0001F600")
    result = run(code, tmp_path)
    assert result.returncode != 0
    assert "missing from font" in result.stderr
