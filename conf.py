"""本書の Sphinx 設定（HTML・PDF・EPUB の 3 形式で共通）。

書名・著者・版はこのファイルの冒頭の 1 か所で決め、表紙・奥付・EPUB の書誌情報は
すべてここから作る。ビルドは Makefile から行う（`make book`）。
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tools" / "sphinxext"))

# -- 書誌情報（ここだけを書き換える） -------------------------------------------
book_title = "作って学ぶ Transformer"
book_subtitle = "言語処理系の実装者のための LLM 入門"
project = "easy-transformer"
author = "easy-transformer 執筆チーム"
release = "0.1.0"  # 版。リリースのタグ v0.1.0 と揃える
version = release
# EPUB の識別子。XML の名前として正しい形（コロンなし）で、版が変わっても同じにする
book_identifier = "easy-transformer-6f1f3c0e-5d0a-4c55-9a3e-2f3b8c1d7e42"
copyright_holder = author
license_code = "MIT"
license_text = "CC BY 4.0"
language = "ja"
# PDF の文書情報のキーワード
book_keywords = [
    "Transformer",
    "大規模言語モデル",
    "LLM",
    "注意機構",
    "深層学習",
    "PyTorch",
    "コンパイラ",
]


def _git(*args: str) -> str:
    """git の出力を返す。git が無い・リポジトリでない場合は空文字列。"""
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return out.stdout.strip()


# ビルド日は SOURCE_DATE_EPOCH があればそれを使い、同じコミットから同じ本ができるようにする。
_epoch = os.environ.get("SOURCE_DATE_EPOCH") or _git(
    "log", "-1", "--format=%ct"
)
build_date = (
    datetime.datetime.fromtimestamp(int(_epoch), tz=datetime.UTC).date()
    if _epoch
    else datetime.date.today()
)
build_date_ja = f"{build_date.year}年{build_date.month}月{build_date.day}日"
build_commit = _git("rev-parse", "--short=12", "HEAD") or "不明"
copyright = f"{build_date.year}, {copyright_holder}"  # Sphinx の設定名

# -- 全形式に共通 -----------------------------------------------------------------
extensions = [
    "myst_parser",
    "sphinx_copybutton",
    "sphinx.ext.mathjax",
    "sphinx.ext.imgmath",
    "bookext",
    "jasearch",
    # 構造図: sphinxcontrib-mermaid の {mermaid} 指示（bookmermaid が幅と <img> を足す）
    "bookmermaid",
    # 参考文献: book/references.bib から付録の一覧と本文の引用を作る（書式は bookbib）
    "sphinxcontrib.bibtex",
    "bookbib",
]
root_doc = "index"
source_suffix = {".md": "markdown"}
# _generated/ の .md と appendix/solutions/ は、付録が {include} で取り込む部品で、単独の文書ではない
exclude_patterns = ["_generated/**", "**/README.md", "appendix/solutions/*"]
templates_path: list[str] = []
numfig = True
numfig_format = {
    "figure": "図 %s",
    "table": "表 %s",
    "code-block": "リスト %s",
    "section": "%s 節",
}
numfig_secnum_depth = 1
pygments_style = "default"
nitpicky = True

myst_enable_extensions = [
    "colon_fence",
    "dollarmath",
    "amsmath",
    "deflist",
    "substitution",
]
myst_heading_anchors = 3

# 参考文献（CONTRIBUTING.md §10）。一覧の書式と並び順、引用の表記は
# tools/sphinxext/bookbib.py の style "book"。bookbib は、LaTeX で一覧が文書の末尾に
# 集められないよう、付録の一覧の citation を段落に置き換える（InlineBibliography）
bibtex_bibfiles = ["book/references.bib"]
bibtex_default_style = "book"
bibtex_reference_style = "book"
# 一覧の項目のアンカーは、手で書いていたころのラベルと同じ #bib-<キー>
bibtex_cite_id = "bib-{key}"


def _measured_numbers() -> dict[str, str]:
    """計測の記録 benchmarks/results/*.json の "book" の項目を、本文の置換にする。

    本文に載せる実測値は手で写さず、`{{kv_cache_speedup}}` のように
    「ファイル名（拡張子なし）_項目名」で参照する。値は計測のスクリプトが
    本文に載せる形（桁数・単位）にそろえた文字列で書く。
    """
    numbers: dict[str, str] = {}
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        book = data.get("book", {}) if isinstance(data, dict) else {}
        for key, value in book.items():
            name = f"{path.stem}_{key}"
            if name in numbers:
                raise ValueError(f"実測値の名前 {name} が重複しています")
            numbers[name] = str(value)
    return numbers


myst_substitutions = {
    "book_title": book_title,
    "release": release,
    **_measured_numbers(),
}
# 本文の python ブロックは sybil が実行する。ハイライトも python で行う。
highlight_language = "python3"

# -- 構造図（Mermaid） -----------------------------------------------------------
# 原稿の ```{mermaid} をビルド時に node_modules の mermaid-cli（mmdc）と Debian の
# Chromium で画像にする。HTML に mermaid.js は読み込まない（CDN を使わない。
# mermaid_output_format が raw 以外なら拡張は JavaScript を足さず、bookmermaid は
# raw を設定の誤りとして止める）。HTML は SVG、EPUB は読書アプリで確実に出る PNG
# （2 倍の解像度）、LaTeX は PDF（--pdfFit で図の大きさのページ）。
mermaid_cmd = str(ROOT / "node_modules" / ".bin" / "mmdc")


def _puppeteer_config() -> Path:
    """mmdc に渡す Puppeteer の設定。既定は Debian の /usr/bin/chromium。

    環境変数 CHROMIUM があれば、その実行ファイルを使う設定を build/ に書いて
    それを渡す（tools/check_browser.mjs・tools/screenshot.sh と同じ変数）。
    """
    base = ROOT / "tools" / "puppeteer-config.json"
    chromium = os.environ.get("CHROMIUM")
    if not chromium:
        return base
    config = json.loads(base.read_text(encoding="utf-8"))
    config["executablePath"] = chromium
    out = ROOT / "build" / "puppeteer-config.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return out


mermaid_output_format = "png" if tags.has("epub") else "svg"  # type: ignore[name-defined]  # noqa: F821
mermaid_params = [
    "--quiet",
    "--puppeteerConfigFile",
    str(_puppeteer_config()),
    "--configFile",
    str(ROOT / "tools" / "mermaid-config.json"),
    "--backgroundColor",
    "white",
    "--pdfFit",
    *(["--scale", "2"] if tags.has("epub") else []),  # type: ignore[name-defined]  # noqa: F821
]

# -- HTML -------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = book_title
html_static_path = ["book/_generated/static", "book/_static"]
html_css_files = ["book.css"]
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_source_button": False,
    "show_navbar_depth": 1,
    "home_page_in_toc": True,
    # pydata-sphinx-theme は既定で外部のアイコンやアナリティクスを読まないが、念のため明示する
    "icon_links": [],
}
html_last_updated_fmt = build_date_ja
html_copy_source = False
html_show_sourcelink = False
# CDN を使わない: MathJax は npm で入れたものを _static にコピーして使う（Makefile 参照）。
# SVG 出力の版はフォントを別ファイルで読まないので file:// でも表示できる。
mathjax_path = "mathjax/tex-svg-full.js"
# EPUB では数式を画像（SVG）にする。`-t epub` を付けたビルドでだけ切り替える。
html_math_renderer = "imgmath" if tags.has("epub") else "mathjax"  # type: ignore[name-defined]  # noqa: F821
imgmath_image_format = "svg"
# 数式の中の日本語（\text{行目} など）も組めるように upLaTeX を使い、
# dvisvgm には和文フォント（原ノ味）の対応表を渡す
imgmath_latex = "uplatex"
imgmath_dvisvgm_args = ["--no-fonts", "--fontmap=+uptex-haranoaji.map"]
imgmath_font_size = 12
imgmath_latex_preamble = r"\usepackage{amsmath,amssymb,bm}"
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True

# -- EPUB -------------------------------------------------------------------------
epub_title = f"{book_title}――{book_subtitle}"
epub_author = author
epub_publisher = author
epub_copyright = copyright
epub_language = "ja"
epub_identifier = book_identifier
epub_uid = book_identifier  # epub_identifier と一致させないと epubcheck が NCX-001 を出す
epub_scheme = "uuid"
epub_basename = "easy-transformer"
epub_cover = ("_static/cover.png", "epub-cover.html")
epub_show_urls = "footnote"
epub_exclude_files = ["search.html"]
epub_tocdepth = 2
epub_description = book_subtitle

# -- LaTeX / PDF ------------------------------------------------------------------
latex_engine = "uplatex"
latex_docclass = {"manual": "jsbook"}
latex_documents = [
    (root_doc, "easy-transformer.tex", book_title, author, "manual", False),
]
latex_toplevel_sectioning = "part"
latex_show_urls = "footnote"
latex_show_pagerefs = False
latex_additional_files = ["book/_latex/easy-transformer.dic"]


def _latex_escape(text: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("#", r"\#"),
        ("_", r"\_"),
    ):
        text = text.replace(a, b)
    return text


_titlepage = rf"""
\hypersetup{{
  pdftitle={{{_latex_escape(book_title)}――{_latex_escape(book_subtitle)}}},
  pdfauthor={{{_latex_escape(author)}}},
  pdfsubject={{{_latex_escape(book_subtitle)}}},
  pdfkeywords={{{_latex_escape(", ".join(book_keywords))}}},
  pdflang={{ja}}}}
% 表紙（EPUB と同じ絵を figures_src/cover.py が PDF でも書き出す）と、その裏の白紙
\begin{{titlepage}}
  \thispagestyle{{empty}}
  \AddToShipoutPictureBG*{{\AtPageLowerLeft{{%
    \includegraphics[width=\paperwidth,height=\paperheight]{{cover.pdf}}}}}}
  \mbox{{}}
\end{{titlepage}}
\clearpage\thispagestyle{{empty}}\mbox{{}}\clearpage
\begin{{titlepage}}
  \thispagestyle{{empty}}
  \vspace*{{0.18\textheight}}
  \begin{{center}}
    {{\Huge\bfseries {_latex_escape(book_title)}\par}}
    \vspace{{1.2em}}
    {{\Large {_latex_escape(book_subtitle)}\par}}
    \vspace{{0.25\textheight}}
    {{\large {_latex_escape(author)}\par}}
    \vspace{{1.5em}}
    {{\normalsize 第 {_latex_escape(release)} 版\quad {build_date_ja}\par}}
  \end{{center}}
\end{{titlepage}}
"""

_colophon = rf"""
\clearpage
\thispagestyle{{empty}}
\vspace*{{\fill}}
\begin{{center}}
\begin{{minipage}}{{0.8\textwidth}}
  \noindent{{\large\bfseries {_latex_escape(book_title)}}}\par
  \noindent{{\small {_latex_escape(book_subtitle)}}}\par
  \vspace{{0.6em}}\hrule\vspace{{0.8em}}
  \noindent\begin{{tabular}}{{@{{}}ll@{{}}}}
    版 & 第 {_latex_escape(release)} 版 \\
    ビルド日 & {build_date_ja} \\
    コミット & \texttt{{{_latex_escape(build_commit)}}} \\
    著者 & {_latex_escape(author)} \\
    ライセンス & 本文と図は {license_text}、コードは {license_code} \\
  \end{{tabular}}\par
  \vspace{{0.8em}}\hrule\vspace{{0.6em}}
  \noindent{{\footnotesize 本書に掲載したコードはすべて \texttt{{make test}} で実行して検証しています。
  正誤表はリポジトリの \texttt{{ERRATA.md}} にあります。}}
\end{{minipage}}
\end{{center}}
"""

latex_elements = {
    "papersize": "b5j",  # JIS B5（182mm × 257mm）
    "pointsize": "10pt",
    "extraclassoptions": "uplatex,openany",
    "releasename": "版",
    # 和文フォントを PDF に埋め込む（pxchfon で原ノ味フォントを指定する）
    "fontpkg": r"""
\usepackage[haranoaji]{pxchfon}
\usepackage{tgtermes}
\usepackage{tgheros}
\renewcommand{\ttdefault}{txtt}
""",
    "preamble": r"""
\usepackage{amsmath,amssymb,bm}
\usepackage{eso-pic}
\usepackage{bookpreamble}
""",
    "maketitle": _titlepage,
    "sphinxsetup": "verbatimwithframe=true, VerbatimColor={rgb}{0.97,0.97,0.97}",
    "fvset": r"\fvset{fontsize=\small}",
    # 奥付は索引の後（本の最後のページ）に置く
    "printindex": r"\printindex" + _colophon,
}
latex_additional_files += [
    "book/_latex/bookpreamble.sty",
    "book/_generated/figures/cover.pdf",
]

# 前付け・付録として扱う文書（bookext が LaTeX の \frontmatter・\appendix を入れる）
book_frontmatter = ["frontmatter/preface", "frontmatter/setup"]
# 本編の後ろの、部にも章番号にも入れない章（終章）
book_epilogue = ["epilogue"]
book_backmatter_prefix = "appendix/"
