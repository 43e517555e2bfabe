"""同じコミットから 2 回ビルドした Web 版と EPUB が、同じバイト列になることを確かめる。

`make check-book` から呼ぶ。dist/ にある 1 回目のビルドの結果と、ここで
build/repro/ に作り直した 2 回目の結果を比べる（doctree も新しく作る）。
図は 2 回とも同じ book/_generated/figures/ を使う。図そのものの決定性は
tools/check_figures.py が確かめる。原稿の中の構造図（{mermaid}）は、ビルドのたびに
Sphinx が mmdc で描く（出力先が空なので 2 回目も描き直す）ので、その SVG と PNG が
同じバイト列になること（乱数の id が入らないこと）もここで確かめる。
PDF は比べない（理由は CONTRIBUTING.md）。

違うファイルがあれば一覧を表示して終了コード 1 で終わる。
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
REPRO = ROOT / "build" / "repro"
SPHINX = [str(ROOT / ".venv" / "bin" / "sphinx-build"), "-W", "-n", "-q"]


def source_date_epoch() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return epoch
    return subprocess.run(
        ["git", "log", "-1", "--format=%ct"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def build(builder: str, out: Path, env: dict[str, str]) -> None:
    tags = ["-t", "epub"] if builder == "epub" else []
    cmd = [*SPHINX, "-b", builder, *tags, "-c", str(ROOT)]
    cmd += ["-d", str(REPRO / f"doctrees-{builder}"), "book", str(out)]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)


def tree_differences(a: Path, b: Path) -> list[str]:
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    problems = [f"1 回目にだけある: {p}" for p in sorted(files_a - files_b)]
    problems += [
        f"2 回目にだけある: {p}" for p in sorted(files_b - files_a)
    ]
    for rel in sorted(files_a & files_b):
        if not filecmp.cmp(a / rel, b / rel, shallow=False):
            problems.append(f"中身が違う: {rel}")
    return problems


def epub_differences(a: Path, b: Path) -> list[str]:
    if a.read_bytes() == b.read_bytes():
        return []
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        names_a, names_b = za.namelist(), zb.namelist()
        if names_a != names_b:
            return ["EPUB: 中のファイルの並びが違う"]
        problems = [
            f"EPUB: 中身が違う: {name}"
            for name in names_a
            if za.read(name) != zb.read(name)
        ]
    return problems or ["EPUB: 中身は同じだが zip のバイト列が違う"]


def main() -> int:
    env = {**os.environ, "SOURCE_DATE_EPOCH": source_date_epoch()}
    shutil.rmtree(REPRO, ignore_errors=True)
    build("html", REPRO / "html", env)
    build("epub", REPRO / "epub", env)
    epub = REPRO / "epub" / "easy-transformer.epub"
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "repack_epub.py"), str(epub)],
        env=env,
        check=True,
    )
    problems = tree_differences(DIST / "html", REPRO / "html")
    problems += epub_differences(DIST / "easy-transformer.epub", epub)
    if problems:
        print(f"再現性: 2 回のビルドで違うもの {len(problems)} 件:")
        for p in problems[:40]:
            print(f"  {p}")
        return 1
    count = sum(1 for p in (DIST / "html").rglob("*") if p.is_file())
    diagrams = len(list((REPRO / "html" / "_images").glob("mermaid-*.svg")))
    with zipfile.ZipFile(epub) as z:
        diagrams_epub = sum(
            1
            for n in z.namelist()
            if Path(n).name.startswith("mermaid-") and n.endswith(".png")
        )
    print(
        f"再現性: HTML の {count} ファイル（Mermaid の図 {diagrams} 個）と"
        f" EPUB（Mermaid の図 {diagrams_epub} 個）が、2 回のビルドで同じバイト列"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
