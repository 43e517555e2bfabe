"""付録の用語集（book/appendix/glossary.md）の用語を 1 つの表にまとめ、並べ替える。

複数の担当者が末尾に追記した `:::{glossary}` ブロックを 1 つにまとめ、
英字で始まる語を先頭に、続いて五十音順に並べる。漢字の読みは、
索引と同じ辞書（book/_latex/easy-transformer.dic）から取る。

使い方: python tools/sort_glossary.py [--check]
  --check: 並べ替えが必要なら終了コード 1（書き換えない）
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from _rewrite import rewrite

ROOT = Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "book" / "appendix" / "glossary.md"
sys.path.insert(0, str(ROOT / "tools" / "sphinxext"))
from yomi import sort_key  # noqa: E402  （索引と同じ読みの規則）


def parse(text: str) -> tuple[str, list[tuple[str, list[str]]]]:
    """（用語集の前の文章、[(見出し語, 説明の行)]）に分ける。"""
    before, _, rest = text.partition(":::{glossary}")
    entries: list[tuple[str, list[str]]] = []
    for block in re.split(
        r"^:::\{glossary\}\s*$", ":::{glossary}" + rest, flags=re.M
    ):
        for line in block.splitlines():
            if (
                not line.strip()
                or line.startswith(":::")
                or line.startswith("<!--")
            ):
                continue
            if line.startswith((" ", "\t")):
                entries[-1][1].append(line)
            else:
                entries.append((line.strip(), []))
    return before, entries


def render(before: str, entries: list[tuple[str, list[str]]]) -> str:
    seen: dict[str, list[str]] = {}
    for term, body in entries:
        if term in seen:
            print(
                f"重複した用語（最初のものを残す）: {term}", file=sys.stderr
            )
            continue
        seen[term] = body
    ordered = sorted(seen, key=sort_key)
    lines = [before.rstrip("\n"), "", ":::{glossary}"]
    for k, term in enumerate(ordered):
        if k:
            lines.append("")
        lines.append(term)
        lines.extend(seen[term])
    lines.append(":::")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    return rewrite(
        GLOSSARY,
        lambda text: render(*parse(text)),
        check=args.check,
        command="python tools/sort_glossary.py",
    )


if __name__ == "__main__":
    sys.exit(main())
