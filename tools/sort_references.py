"""付録の参考文献（book/appendix/references.md）の項目を、ラベル順（著者の姓と年）に並べる。

複数の担当者が末尾に追記した項目を 1 つの並びにまとめる。各項目は
`(bib-<姓><年>)=` の行から次の空行までとする。

使い方: python tools/sort_references.py [--check]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from _rewrite import rewrite

ROOT = Path(__file__).resolve().parent.parent
REFERENCES = ROOT / "book" / "appendix" / "references.md"
LABEL = re.compile(r"^\(bib-(?P<key>[a-z0-9-]+)\)=$")
DISABLE = "<!-- textlint-disable -->"
ENABLE = "<!-- textlint-enable -->"


def render(text: str) -> str:
    lines = [
        line
        for line in text.splitlines()
        if line.strip() not in (DISABLE, ENABLE)
    ]
    head: list[str] = []
    entries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        m = LABEL.match(line.strip())
        if m:
            key = m.group("key")
            if key in entries:
                print(
                    f"重複した文献（最初のものを残す）: {key}",
                    file=sys.stderr,
                )
                current = []
                continue
            current = entries[key] = [line]
        elif current is None:
            head.append(line)
        else:
            # 空行は項目の区切り（項目の中身は連続した行）
            if line.strip():
                current.append(line)
    out = [DISABLE, *[h for h in head]]
    while out and not out[-1].strip():
        out.pop()
    for key in sorted(entries):
        out += ["", *entries[key]]
    out += ["", ENABLE]
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    return rewrite(
        REFERENCES,
        render,
        check=args.check,
        command="python tools/sort_references.py",
    )


if __name__ == "__main__":
    sys.exit(main())
