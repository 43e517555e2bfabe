"""本書の Sphinx 拡張（tools/sphinxext/bookext.py）を小さな原稿で確かめる。"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sphinx.application import Sphinx

ROOT = Path(__file__).resolve().parent.parent

CONF = """
import sys
sys.path.insert(0, {ext!r})
extensions = ["myst_parser", "bookext"]
language = "ja"
latex_engine = "uplatex"
latex_docclass = {{"manual": "jsbook"}}
latex_toplevel_sectioning = "part"
latex_documents = [("index", "t.tex", "T", "A", "manual", False)]
book_frontmatter = ["preface"]
book_backmatter_prefix = "appendix/"
"""

DOCS = {
    "index.md": "# 本\n\n```{toctree}\npreface\npart1/index\nappendix/a\n```\n",
    "preface.md": "# はじめに\n\n一文目です。\n二文目です。\nEnglish line\nnext line.\n",
    "part1/index.md": "# 第1部 導入\n\n```{toctree}\nch01\n```\n",
    "part1/ch01.md": "# 第1章 なぜ\n\n本文 `code`\nです。\n",
    "appendix/a.md": "# 用語集\n\n本文です。\n",
}


def build(tmp_path: Path, builder: str) -> Path:
    src = tmp_path / "src"
    for name, text in DOCS.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text, encoding="utf-8")
    ext = str(ROOT / "tools" / "sphinxext")
    (src / "conf.py").write_text(CONF.format(ext=ext), encoding="utf-8")
    out = tmp_path / builder
    app = Sphinx(
        str(src),
        str(src),
        str(out),
        str(tmp_path / "doctrees"),
        builder,
        status=None,
        warningiserror=True,
    )
    app.build()
    return out


def test_japanese_line_breaks_are_joined(tmp_path: Path) -> None:
    html = (build(tmp_path, "html") / "preface.html").read_text(
        encoding="utf-8"
    )
    assert "一文目です。二文目です。" in html
    # 英文どうしの改行は単語の区切りなので残す
    assert re.search(r"English line\s+next line", html)
    ch01 = (tmp_path / "html" / "part1" / "ch01.html").read_text(
        encoding="utf-8"
    )
    assert re.search(r"</span></code>です。", ch01)


@pytest.fixture
def latex(tmp_path: Path) -> str:
    return (build(tmp_path, "latex") / "t.tex").read_text(encoding="utf-8")


def test_frontmatter_and_appendix_are_chapters(latex: str) -> None:
    assert r"\chapter{はじめに}" in latex
    assert r"\chapter{用語集}" in latex
    assert (
        r"\part{導入}" in latex
    )  # 「第1部」は jsbook が付けるので取り除く
    assert r"\chapter{なぜ}" in latex
    order = [
        latex.index(m)
        for m in (r"\etfrontmatter", r"\etmainmatter", r"\etappendix")
    ]
    assert order == sorted(order)
    assert r"\renewcommand{\contentsname}{目次}" in latex


def test_html_index_is_in_reading_order(tmp_path: Path) -> None:
    """HTML の索引は、PDF と同じ読みの辞書で五十音順に並び、行の見出しでまとまる。"""
    DOCS["part1/ch01.md"] += (
        "\n{index}`注意機構` {index}`Transformer` {index}`トークン`"
        " {index}`語彙` {index}`層正規化` {index}`バッチ`"
        " {index}`埋め込み` {index}`attention`\n"
    )
    try:
        html = (build(tmp_path, "html") / "genindex.html").read_text(
            encoding="utf-8"
        )
    finally:
        DOCS["part1/ch01.md"] = DOCS["part1/ch01.md"].split("\n{index}")[0]
    headings = re.findall(r'<h2 id="([^"]+)">', html)
    assert headings == ["A", "T", "あ", "か", "さ", "た", "は"]
    terms = re.findall(r"<a href=\"[^\"]*\">([^<]+)</a>", html)
    order = [
        t
        for t in terms
        if t
        in {
            "attention",
            "Transformer",
            "埋め込み",
            "語彙",
            "層正規化",
            "注意機構",
            "トークン",
            "バッチ",
        }
    ]
    assert order == [
        "attention",
        "Transformer",
        "埋め込み",
        "語彙",
        "層正規化",
        "注意機構",
        "トークン",
        "バッチ",
    ]
