"""本に載っているコードを pytest で集めて実行する（sybil）。

- `book/**/*.md` の ```python ブロック（doctest 形式を含む）を文書ごとに上から順に実行する。
  同じ文書のブロックは名前空間を共有する。
- `listings/**/*.py` の docstring にある doctest を実行する。
- 実行しないブロックは `% skip: next "理由"` で理由を付けて飛ばす。
  飛ばしたブロックの一覧は、テストの最後に表示する。
"""

from __future__ import annotations

import doctest
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sybil import Sybil
from sybil.parsers.myst import (
    ClearNamespaceParser,
    PythonCodeBlockParser,
    SkipParser,
)
from sybil.parsers.rest import DocTestParser

ROOT = Path(__file__).resolve().parent

# テストは PyTorch の演算を 1 スレッドで行う。2 コアの共有マシンでは、
# スレッドの取り合いで小さな演算が極端に遅くなることがあり、
# 並列の足し算の順序による末尾の桁の揺れも避けられる。
try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
DOCTEST_FLAGS = doctest.NORMALIZE_WHITESPACE
SKIP_DIRECTIVE = re.compile(
    r"^%\s*skip:\s*(?P<action>\w+)\s*(?P<reason>.*)$"
)


def _reset_random_state(namespace: dict[str, Any]) -> None:
    """文書ごとに乱数の状態をそろえ、前の文書の実行結果に左右されないようにする。"""
    random.seed(0)
    np.random.seed(0)
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.manual_seed(0)


_book = Sybil(
    parsers=[
        PythonCodeBlockParser(doctest_optionflags=DOCTEST_FLAGS),
        SkipParser(),
        ClearNamespaceParser(),
    ],
    # Path.match は右から 1 階層ずつ照合する（"**" は使えない）ので、
    # path で根を決めて、その下のすべての .md を対象にする
    path="book",
    patterns=["*.md"],
    excludes=["_generated/*"],
    setup=_reset_random_state,
    name="book",
)
_listings = Sybil(
    parsers=[DocTestParser(optionflags=DOCTEST_FLAGS)],
    path="listings",
    patterns=["*.py"],
    setup=_reset_random_state,
    name="listings",
)
pytest_collect_file = (_book + _listings).pytest()


def collect_skips() -> list[tuple[str, int, str]]:
    """本文の `% skip:` 指示を（ファイル、行、理由）の一覧で返す。"""
    found = []
    for path in sorted((ROOT / "book").rglob("*.md")):
        if "_generated" in path.parts:
            continue
        for lineno, line in enumerate(
            path.read_text(encoding="utf-8").splitlines(), 1
        ):
            m = SKIP_DIRECTIVE.match(line.strip())
            if m:
                found.append(
                    (
                        str(path.relative_to(ROOT)),
                        lineno,
                        m.group("reason").strip(),
                    )
                )
    return found


def pytest_terminal_summary(terminalreporter: Any) -> None:
    skips = collect_skips()
    terminalreporter.section(
        f"本文で実行を飛ばしたコードブロック: {len(skips)} 件"
    )
    for path, lineno, reason in skips:
        terminalreporter.write_line(f"{path}:{lineno}  {reason}")


@pytest.fixture
def repo_root() -> Path:
    return ROOT
