"""Web 版の日本語の全文検索: 文字の 1-gram と 2-gram で索引を作る。

Sphinx の既定の日本語の分かち書き（TinySegmenter）は、本文と検索語を
違う位置で切ることがあり、「層正規化」のように本文にある語でも見つからない。
そこで、かな・漢字の連なりは単語に切らず、重なりのある 2 文字ずつ
と 1 文字ずつを索引の語にする。検索語は 2 文字ずつ（1 文字の語はその 1 文字）に切り、
そのすべてを含むページを返すので、本文にある語は必ず見つかる
（取りこぼしが無い代わりに、2-gram がばらばらに現れるページも返りうる）。
英数字の語は、既定と同じく単語のまま索引に入れる。

Python 側（索引を作る）と JavaScript 側（検索語を切る）の規則は同じでなければ
ならない。両方をこのファイルに置く。
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

from sphinx.application import Sphinx
from sphinx.search.ja import SearchJapanese

# かな・漢字（と長音符・繰り返し記号）の連なり、または英数字の語
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u30fc"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W{_CJK}]+")
_IS_CJK = re.compile(rf"^[{_CJK}]+$")


def split_japanese(text: str) -> list[str]:
    """検索語の切り方（下の JavaScript の splitQuery と同じ規則）。

    かな・漢字の連なりは重なりのある 2 文字ずつ、1 文字ならその 1 文字。

    >>> split_japanese("層正規化の式と Pre-LN")
    ['層正', '正規', '規化', '化の', 'の式', '式と', 'pre', 'ln']
    >>> split_japanese("型と x_1")
    ['型と', 'x_1']
    """
    words: list[str] = []
    for token in _TOKEN.findall(text.lower()):
        if _IS_CJK.match(token) and len(token) > 1:
            words.extend(token[i : i + 2] for i in range(len(token) - 1))
        else:
            words.append(token)
    return words


def index_words(text: str) -> list[str]:
    """索引に入れる語: 検索語の切り方に、かな・漢字の 1 文字ずつを足したもの。

    1 文字の検索語（「型」）は、本文の連なりの中の 1 文字にも当たる必要がある。

    >>> index_words("型と x_1")
    ['型と', '型', 'と', 'x_1']
    """
    words: list[str] = []
    for token in _TOKEN.findall(text.lower()):
        words.extend(split_japanese(token))
        if _IS_CJK.match(token) and len(token) > 1:
            words.extend(token)
    return words


# 検索語を切る JavaScript（Sphinx の language_data.js に入り、splitQuery を定義する）。
# 上の split_japanese と同じ規則。
JS_SPLITTER = r"""
function splitQuery(query) {
  const cjk = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u30fc";
  const token = new RegExp(
    "[" + cjk + "]+|(?:(?![" + cjk + "])[\\p{L}\\p{N}\\p{M}_])+", "gu");
  const isCjk = new RegExp("^[" + cjk + "]+$", "u");
  const words = [];
  for (const t of query.toLowerCase().match(token) || []) {
    if (isCjk.test(t) && t.length > 1) {
      for (let i = 0; i + 1 < t.length; i++) words.push(t.slice(i, i + 2));
    } else {
      words.push(t);
    }
  }
  return words;
}
"""


class SearchJapaneseNgram(SearchJapanese):
    """日本語の検索を文字の n-gram で行う（Sphinx の SearchJapanese を置き換える）。"""

    js_splitter_code = JS_SPLITTER

    def split(self, input: str) -> list[str]:
        return index_words(input)

    def word_filter(self, stemmed_word: str) -> bool:
        # 和文は 1 文字の語（「型」「木」）も索引に入れる。英数字は既定どおり 2 文字以上
        return len(stemmed_word) > 1 or bool(_IS_CJK.match(stemmed_word))


class _MainText(HTMLParser):
    """HTML の本文の文字だけを取り出す。

    本文は、テーマの記事の要素（sphinx-book-theme では `article.bd-article`）、
    それが無ければ role="main" の要素。目次やナビゲーションは入れない。
    """

    _SKIP: ClassVar[set[str]] = {"script", "style"}
    # 閉じタグの無い要素（深さを数えない）
    _VOID: ClassVar[set[str]] = {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }

    def __init__(
        self,
        is_main: Callable[
            [
                str,
                dict[str, str],
            ],
            bool,
        ],
    ):
        super().__init__()
        self.is_main = is_main
        self.depth = 0  # 本文の中での要素の深さ（0 は外）
        self.skip = 0
        self.parts: list[str] = []

    def handle_starttag(
        self, tag: str, attrs: list[tuple[str, str | None]]
    ) -> None:
        if tag in self._VOID:
            return
        attributes = {k: v or "" for k, v in attrs}
        if self.depth:
            self.depth += 1
            classes = attributes.get("class", "").split()
            if tag in self._SKIP or "headerlink" in classes or self.skip:
                self.skip += 1
        elif self.is_main(tag, attributes):
            self.depth = 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._VOID:
            return
        if self.depth:
            self.depth -= 1
            if self.skip:
                self.skip -= 1

    def handle_data(self, data: str) -> None:
        if self.depth and not self.skip:
            self.parts.append(data)

    def text(self) -> str:
        return " ".join("".join(self.parts).split())


def _is_article(tag: str, attrs: dict[str, str]) -> bool:
    return (
        tag == "article" and "bd-article" in attrs.get("class", "").split()
    )


def _is_role_main(tag: str, attrs: dict[str, str]) -> bool:
    return attrs.get("role") == "main"


def main_text(page: str) -> str:
    """ページの HTML から本文の文字を取り出す。"""
    for is_main in (_is_article, _is_role_main):
        parser = _MainText(is_main)
        parser.feed(page)
        if parser.parts:
            return html.unescape(parser.text())
    return ""


# 検索結果の要約を file:// でも出すための fetch の置き換え。
# Sphinx の検索は、要約を作るために結果のページを fetch で取りに行くが、
# file:// ではブラウザがそれを止める。本文の文字をこのファイルに入れておき、
# 本のページへの fetch にはそこから答える（ネットワークにもディスクにも行かない）。
_FETCH_SHIM = r"""
// Sphinx の日本語の翻訳カタログでは、検索の件数の文言が空の文字列になっていて、
// 「N ページ見つかりました」が表示されない（日本語は単数と複数を区別しないので、
// 単数形の項目 1 つが全件数に使われる）。ここで補う。
if (typeof Documentation !== "undefined" && Documentation.TRANSLATIONS) {
  Documentation.TRANSLATIONS[
    "Search finished, found one page matching the search query."
  ] = ["検索が終わりました。${resultCount} ページが見つかりました。"];
}
(() => {
  const texts = window.BOOK_SEARCH_TEXTS;
  const original = window.fetch ? window.fetch.bind(window) : null;
  window.fetch = (input, init) => {
    const root = new URL(
      document.documentElement.dataset.content_root || "./", document.baseURI);
    const url = new URL(
      typeof input === "string" ? input : input.url, document.baseURI);
    const key = decodeURIComponent(url.pathname.slice(root.pathname.length));
    if (url.href.startsWith(root.href) && key in texts) {
      const main = document.createElement("div");
      main.setAttribute("role", "main");
      main.textContent = texts[key];
      return Promise.resolve(new Response(main.outerHTML,
        { headers: { "Content-Type": "text/html" } }));
    }
    return original(input, init);
  };
})();
"""

SEARCH_TEXTS = "search_texts.js"


def write_search_texts(app: Sphinx, exception: Exception | None) -> None:
    """HTML のビルドの最後に、全ページの本文の文字を _static に書く。"""
    if exception or app.builder.name != "html":
        return
    out = Path(app.outdir)
    suffix = app.builder.out_suffix  # type: ignore[attr-defined]
    texts: dict[str, str] = {}
    for docname in sorted(app.env.found_docs):
        page = out / f"{docname}{suffix}"
        if not page.exists():
            continue
        texts[f"{docname}{suffix}"] = main_text(
            page.read_text(encoding="utf-8")
        )
    data = json.dumps(texts, ensure_ascii=False, sort_keys=True)
    (out / "_static" / SEARCH_TEXTS).write_text(
        f"window.BOOK_SEARCH_TEXTS = {data};\n{_FETCH_SHIM}",
        encoding="utf-8",
    )


def add_search_texts(
    app: Sphinx,
    pagename: str,
    templatename: str,
    context: dict[str, Any],
    doctree: Any,
) -> None:
    """検索のページにだけ、本文の文字と fetch の置き換えを読み込ませる。"""
    if pagename == "search" and app.builder.name == "html":
        app.add_js_file(SEARCH_TEXTS)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_search_language(SearchJapaneseNgram)
    app.connect("html-page-context", add_search_texts)
    app.connect("build-finished", write_search_texts)
    return {
        "version": "1.0",
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
