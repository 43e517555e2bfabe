"""listings/ のファイルがどれもそのまま実行できること（doctest は conftest.py の sybil が実行する）。"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LISTINGS = sorted(
    p for p in (ROOT / "listings").rglob("*.py") if p.name != "__init__.py"
)


@pytest.mark.parametrize(
    "path", LISTINGS, ids=lambda p: str(p.relative_to(ROOT))
)
def test_listing_runs(path: Path) -> None:
    # __main__ としては実行しない（重い処理は main() に置く約束）
    runpy.run_path(str(path), run_name="listing")


def test_listing_names_follow_convention() -> None:
    for path in LISTINGS:
        assert path.parent.name.startswith("ch"), path
        assert path.name[:2].isdigit() and path.name[2] == "_", path


def test_listing_folders_are_packages() -> None:
    """sybil が docstring の doctest をモジュールとして読み込めるように。"""
    for folder in {p.parent for p in LISTINGS}:
        assert (folder / "__init__.py").exists(), (
            f"{folder} に __init__.py が無い"
        )
