"""図のスクリプトが決定的に（毎回同じバイト列の）図を作ること。"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(
    p
    for p in (ROOT / "figures_src").glob("*.py")
    if not p.name.startswith("_")
)


def run_script(script: Path, out: Path) -> dict[str, bytes]:
    env = {
        **os.environ,
        "ET_FIG_DIR": str(out),
        "PYTHONWARNINGS": "error::UserWarning",
    }
    subprocess.run(
        [sys.executable, script.name],
        cwd=script.parent,
        env=env,
        check=True,
    )
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_figure_script_is_deterministic(
    script: Path, tmp_path: Path
) -> None:
    first = run_script(script, tmp_path / "a")
    second = run_script(script, tmp_path / "b")
    assert first, f"{script.name} が図を 1 つも書かなかった"
    for name in first:
        stem = name.rsplit(".", 1)[0]
        assert stem == script.stem or stem.startswith(script.stem + "-"), (
            name
        )
    assert first.keys() == second.keys()
    changed = [name for name in first if first[name] != second[name]]
    assert not changed, f"実行ごとに内容が変わる図: {changed}"


def test_missing_glyph_is_an_error(tmp_path: Path) -> None:
    """フォントに無い文字（豆腐）は警告ではなくエラーになる。"""
    figures_src = str(ROOT / "figures_src")
    code = (
        f"import sys; sys.path.insert(0, {figures_src!r})\n"
        "import _figlib, matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots(); ax.set_title('\\U0001F600')\n"
        "_figlib.FigureWriter('x.py').save(fig, formats=('png',))\n"
    )
    env = {**os.environ, "ET_FIG_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "missing from font" in result.stderr
