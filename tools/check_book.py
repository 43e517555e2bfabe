"""できあがった本（dist/）を検査する。`make check-book` と .ci/run から呼ぶ。

- EPUB: epubcheck でエラー 0・警告 0。
- PDF: すべてのフォントが埋め込まれている。判型が JIS B5。部・章ごとのページ数を表示する。
- HTML: 外部（CDN など）からスクリプト・スタイル・画像・フォントを読まない。
  file:// で開いても数式と図が表示できるように、参照先のファイルがすべて手元にある。

問題があれば一覧を表示して終了コード 1 で終わる。
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
# Debian の epubcheck パッケージの置き場所。ほかの環境では EPUBCHECK_JAR で指定する
EPUBCHECK = Path(
    os.environ.get("EPUBCHECK_JAR", "/usr/share/java/epubcheck.jar")
)
B5_PT = (515.91, 728.50)  # JIS B5（182mm × 257mm）


def check_epub(epub: Path) -> list[str]:
    cmd = ["java", "-jar", str(EPUBCHECK), str(epub)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    out = result.stdout + result.stderr
    m = re.search(
        r"Messages: (\d+) fatals / (\d+) errors / (\d+) warnings", out
    )
    if m is None:
        if (
            "No errors or warnings detected" in out
            and result.returncode == 0
        ):
            print("EPUB: epubcheck エラー 0・警告 0")
            return []
        return [f"EPUB: epubcheck の結果を読めない:\n{out}"]
    fatals, errors, warnings = map(int, m.groups())
    print(
        f"EPUB: epubcheck 致命 {fatals}・エラー {errors}・警告 {warnings}"
    )
    if fatals or errors or warnings:
        return [f"EPUB: epubcheck が問題を報告した:\n{out}"]
    return []


def check_pdf(pdf: Path) -> list[str]:
    from pypdf import PdfReader

    problems = []
    fonts = subprocess.run(
        ["pdffonts", str(pdf)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[2:]
    not_embedded = [line for line in fonts if line.split()[-5] != "yes"]
    print(
        f"PDF: フォント {len(fonts)} 個、埋め込まれていないもの {len(not_embedded)} 個"
    )
    problems += [
        f"PDF: 埋め込まれていないフォント: {line}" for line in not_embedded
    ]

    reader = PdfReader(str(pdf))
    box = reader.pages[0].mediabox
    size = (float(box.width), float(box.height))
    print(
        f"PDF: {len(reader.pages)} ページ、判型 {size[0]:.1f}pt × {size[1]:.1f}pt"
    )
    if any(abs(a - b) > 1.0 for a, b in zip(size, B5_PT, strict=True)):
        problems.append(f"PDF: 判型が JIS B5 ではない: {size}")
    for title, first, count in outline_spans(reader):
        print(f"  {title}: {count} ページ（{first + 1} ページ目から）")
    return problems


def outline_spans(reader: object) -> list[tuple[str, int, int]]:
    """しおり（部・章）ごとに（題、開始ページ、ページ数）を返す。"""
    entries: list[tuple[str, int, int]] = []

    def walk(items: list[object], depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                if depth < 1:
                    walk(item, depth + 1)
                continue
            page = reader.get_destination_page_number(item)  # type: ignore[attr-defined]
            entries.append((("  " * depth) + item.title, page, depth))  # type: ignore[attr-defined]

    walk(reader.outline, 0)  # type: ignore[attr-defined]
    total = len(reader.pages)  # type: ignore[attr-defined]
    spans = []
    for k, (title, page, depth) in enumerate(entries):
        # 同じ深さか浅いしおりが次に現れるところまでを、この見出しのページとする
        end = next((p for _, p, d in entries[k + 1 :] if d <= depth), total)
        spans.append((title, page, max(end - page, 1)))
    return spans


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(
        self, tag: str, attrs: list[tuple[str, str | None]]
    ) -> None:
        a = dict(attrs)
        if tag in (
            "script",
            "img",
            "iframe",
            "source",
            "video",
            "audio",
        ) and a.get("src"):
            self.refs.append((tag, a["src"] or ""))
        if tag == "link" and a.get("href"):
            rel = (a.get("rel") or "").lower()
            if any(
                r in rel
                for r in ("stylesheet", "preload", "icon", "modulepreload")
            ):
                self.refs.append((tag, a["href"] or ""))
        if tag == "object" and a.get("data"):
            self.refs.append((tag, a["data"] or ""))


def check_html(html_dir: Path) -> list[str]:
    problems = []
    # _static/ の下の .html はテーマの部品（テンプレート）で、読者が開くページではない
    pages = sorted(
        p for p in html_dir.rglob("*.html") if "_static" not in p.parts
    )
    checked = 0
    for page in pages:
        parser = _Refs()
        parser.feed(page.read_text(encoding="utf-8"))
        for tag, ref in parser.refs:
            parts = urlsplit(ref)
            if parts.scheme or ref.startswith("//"):
                problems.append(
                    f"HTML: {page.relative_to(html_dir)} が外部の {tag} を読む: {ref}"
                )
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            checked += 1
            if not target.exists():
                problems.append(
                    f"HTML: {page.relative_to(html_dir)} の参照先が無い: {ref}"
                )
    for css in sorted(html_dir.rglob("*.css")):
        for url in re.findall(
            r"url\(\s*['\"]?(https?:)?//",
            css.read_text(encoding="utf-8", errors="replace"),
        ):
            problems.append(
                f"HTML: {css.relative_to(html_dir)} が外部の資源を読む ({url})"
            )
    mathjax = html_dir / "_static" / "mathjax" / "tex-svg-full.js"
    if not mathjax.exists():
        problems.append("HTML: MathJax のローカルコピーが無い")
    print(
        f"HTML: {len(pages)} ページ、ローカルの参照 {checked} 件、外部の参照 {sum('外部' in p for p in problems)} 件"
    )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dist", type=Path, default=DIST)
    args = parser.parse_args()
    problems = []
    problems += check_epub(args.dist / "easy-transformer.epub")
    problems += check_pdf(args.dist / "easy-transformer.pdf")
    problems += check_html(args.dist / "html")
    for p in problems:
        print("問題:", p, file=sys.stderr)
    print(
        "検査: "
        + ("問題なし" if not problems else f"{len(problems)} 件の問題")
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
