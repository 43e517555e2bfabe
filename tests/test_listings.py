"""listings/ のファイルが読み込めて、本文が取り込む名前が実在すること。

doctest は conftest.py の sybil が実行する。ここでは、本文の
``literalinclude`` の ``:pyobject:`` が指す関数やクラスが、指す先の
ファイルに本当にあることを確かめる（名前を変えたのに本文を直し忘れると、
Sphinx は警告を出すだけで、取り込みが空になる）。
"""

from __future__ import annotations

import importlib
import re
import runpy
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
LISTINGS = sorted(
    p for p in (ROOT / "listings").rglob("*.py") if p.name != "__init__.py"
)
INCLUDE = re.compile(
    r"^[`:]{3,}\{literalinclude\}[ \t]+(\S+)\n((?::[^\n]*\n)*)", re.M
)


def pyobject_refs() -> dict[Path, set[str]]:
    """本文の literalinclude の :pyobject: を、取り込むファイルごとに集める。"""
    refs: dict[Path, set[str]] = {}
    for md in (ROOT / "book").rglob("*.md"):
        if "_generated" in md.parts:
            continue
        for m in INCLUDE.finditer(md.read_text(encoding="utf-8")):
            target = (md.parent / m.group(1)).resolve()
            for opt in re.finditer(
                r"^:pyobject:\s*(\S+)", m.group(2), re.M
            ):
                refs.setdefault(target, set()).add(opt.group(1))
    return refs


REFS = pyobject_refs()


def has_name(namespace: dict[str, Any], dotted: str) -> bool:
    """``Class.method`` のような点で区切った名前が namespace にあるか。"""
    first, *rest = dotted.split(".")
    if first not in namespace:
        return False
    obj = namespace[first]
    for part in rest:
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


@pytest.mark.parametrize(
    "path", LISTINGS, ids=lambda p: str(p.relative_to(ROOT))
)
def test_listing_imports(path: Path) -> None:
    # __main__ としては実行しない（重い処理は main() に置く約束）
    namespace = runpy.run_path(str(path), run_name="listing")
    for name in sorted(REFS.get(path, set())):
        assert has_name(namespace, name), (
            f"本文が :pyobject: {name} で取り込む名前が "
            f"{path.relative_to(ROOT)} にありません"
        )


def test_package_names_included_by_the_book_exist() -> None:
    package = ROOT / "easy_transformer"
    targets = {p: n for p, n in REFS.items() if p.is_relative_to(package)}
    assert targets  # 本文はパッケージのコードも取り込んでいる
    for path, names in targets.items():
        module_name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        namespace = vars(importlib.import_module(module_name))
        for name in sorted(names):
            assert has_name(namespace, name), (
                f"本文が :pyobject: {name} で取り込む名前が "
                f"{path.relative_to(ROOT)} にありません"
            )


def test_every_included_file_exists() -> None:
    assert REFS
    for path in REFS:
        assert path.is_file(), f"本文が取り込む {path} がありません"


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
