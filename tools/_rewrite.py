"""生成したい内容とファイルを比べ、書き換えるか --check で差を知らせる（並べ替えの道具に共通）。"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rewrite(
    path: Path, render: Callable[[str], str], *, check: bool, command: str
) -> int:
    """path を render した内容に書き換える。

    内容が同じなら何もしない。check のときは書き換えず、違えば直し方を
    表示して 1 を返す。
    """
    text = path.read_text(encoding="utf-8")
    new = render(text)
    if new == text:
        return 0
    if check:
        print(
            f"{path.relative_to(ROOT)} を並べ替える必要があります: {command}"
        )
        return 1
    path.write_text(new, encoding="utf-8")
    return 0
