"""本書のための小さな Sphinx 拡張。

- LaTeX: 前付け（はじめに・環境構築）と終章を番号なしの章に、付録を \\appendix 以下の章にする。
  本の構造は「部（\\part）→ 章 → 節」なので、ルートの toctree に並ぶ文書の見出しは
  既定ではすべて \\part になる。前付け・終章・付録だけ 1 段深くして \\chapter にする。
- EPUB: `{figure}` の `.*` の画像は PNG を優先する（読書アプリで確実に表示されるため。構造図の `{mermaid}` は bookmermaid が PNG で描く）。
- 全形式: 原稿は 1 文 1 行で書くので、和文の行末の改行を取り除く。
  HTML は改行を空白として表示するため、取り除かないと「。」の後に余計な空白が入る。
- HTML: 索引（genindex）を、PDF の索引と同じ読みの辞書で五十音順に並べ、
  かなの行（あ・か・さ…）の見出しでまとめる（既定は文字コード順で、漢字 1 字ずつの
  見出しになる）。
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform
from sphinx.writers.latex import LaTeXTranslator
from yomi import group_label, sort_key

# 見出しに手で書いた「第1部」「第12章」。HTML と EPUB ではこれが番号になり、
# LaTeX では jsbook が番号を振るので取り除く。
_NUMBER_PREFIX = re.compile(r"^第\s*[0-9０-９]+\s*[部章]\s*")


class BookLaTeXTranslator(LaTeXTranslator):
    """前付け・本編・付録の切り替えを入れる LaTeX 翻訳器。"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._matter = "cover"
        self._shifted: list[bool] = []
        # 最初の toctree の見出し（「前付け」）が目次の題にならないようにする
        self.elements["contentsname"] = self.babel_renewcommand(
            r"\contentsname", "目次"
        )

    def visit_index(self, node: nodes.Element) -> None:
        """索引の項目のハイフンを \\sphinxhyphen{} にしない。

        用語集の見出し語の \\index は \\item の引数（動く引数）の中に書かれ、
        .idx に書き出すときに \\sphinxhyphen{} が展開される。本文の \\index では
        展開されないので、同じ語（「クロス注意（cross-attention）」など）が
        索引で 2 行に分かれる。索引の項目では、ハイフンはそのまま書けばよい。
        """
        start = len(self.body)
        try:
            super().visit_index(node)
        finally:
            for i in range(start, len(self.body)):
                if self.body[i].startswith(r"\index{"):
                    self.body[i] = self.body[i].replace(
                        r"\sphinxhyphen{}", "-"
                    )

    def visit_title(self, node: nodes.Element) -> None:
        if (
            isinstance(node.parent, nodes.section)
            and self.sectionlevel <= 1
            and node.children
        ):
            first = node.children[0]
            if isinstance(first, nodes.Text):
                stripped = _NUMBER_PREFIX.sub("", first.astext())
                if stripped != first.astext():
                    node.replace(first, nodes.Text(stripped))
        super().visit_title(node)

    def _matter_of(self, docname: str) -> str:
        cfg = self.config
        if docname in cfg.book_frontmatter:
            return "front"
        if docname in cfg.book_epilogue:
            return "epilogue"
        if docname.startswith(cfg.book_backmatter_prefix):
            return "back"
        return "main"

    def visit_start_of_file(self, node: nodes.Element) -> None:
        matter = self._matter_of(node["docname"])
        if matter != self._matter:
            command = {
                "front": r"\etfrontmatter",
                "main": r"\etmainmatter",
                "epilogue": r"\etepilogue",
                "back": r"\etappendix",
            }[matter]
            self.body.append("\n" + command + "\n")
            self._matter = matter
        super().visit_start_of_file(node)
        shift = matter in ("front", "epilogue", "back")
        self._shifted.append(shift)
        if shift:
            self.sectionlevel += 1

    def depart_start_of_file(self, node: nodes.Element) -> None:
        if self._shifted.pop():
            self.sectionlevel -= 1
        super().depart_start_of_file(node)


# 和文の文字（かな・漢字・全角の記号）
_CJK = r"\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_JA_NEWLINE = re.compile(rf"(?<=[{_CJK}])\n|\n(?=[{_CJK}])")


class JoinJapaneseLines(SphinxTransform):
    """和文の文字に接する改行を取り除く（英文どうしの改行は空白のまま残す）。

    MyST は段落の中の改行（softbreak）を "\n" だけの Text ノードにするので、
    前後の兄弟ノードの端の文字も見て判断する。
    """

    default_priority = 500

    def apply(self, **kwargs: Any) -> None:
        skip = (
            nodes.literal_block,
            nodes.literal,
            nodes.raw,
            nodes.math,
            nodes.math_block,
        )
        for node in list(self.document.findall(nodes.Text)):
            parent = node.parent
            if (
                parent is None
                or isinstance(parent, skip)
                or "\n" not in node
            ):
                continue
            text = str(node)
            if text.strip("\n"):
                joined = _JA_NEWLINE.sub("", text)
            else:
                before = _edge(node, -1)
                after = _edge(node, 1)
                ja = re.compile(rf"[{_CJK}]")
                joined = "" if ja.match(before) or ja.match(after) else text
            if joined != text:
                parent.replace(node, nodes.Text(joined))


def _edge(node: nodes.Node, step: int) -> str:
    """node の前（step=-1）か後（step=1）で最も近い、空でない兄弟の端の 1 文字。"""
    parent = node.parent
    assert parent is not None
    index = parent.index(node) + step
    while 0 <= index < len(parent):
        text: str = parent[index].astext()
        if text:
            return text[-1] if step < 0 else text[0]
        index += step
    return ""


def _prefer_png_in_epub(app: Sphinx) -> None:
    if app.builder.name == "epub":
        # クラス変数をこのビルダーのインスタンスでだけ上書きする
        app.builder.supported_image_types = [  # type: ignore[misc]
            "image/png",
            "image/jpeg",
            "image/gif",
        ]


def _sort_genindex(
    app: Sphinx,
    pagename: str,
    templatename: str,
    context: dict[str, Any],
    doctree: nodes.document | None,
) -> None:
    """HTML の索引の項目を読みの順に並べ直し、かなの行の見出しでまとめる。"""
    groups = context.get("genindexentries")
    if not pagename.startswith("genindex") or not groups:
        return
    entries = [entry for _label, items in groups for entry in items]
    entries.sort(key=lambda entry: sort_key(entry[0]))
    regrouped: list[tuple[str, list[Any]]] = []
    for entry in entries:
        label = group_label(entry[0])
        if not regrouped or regrouped[-1][0] != label:
            regrouped.append((label, []))
        regrouped[-1][1].append(entry)
    context["genindexentries"] = regrouped
    context["genindexcounts"] = [
        sum(1 + len(entry[1][1]) for entry in items)
        for _label, items in regrouped
    ]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value(
        "book_frontmatter", [], "env", types=frozenset({list})
    )
    app.add_config_value(
        "book_epilogue", [], "env", types=frozenset({list})
    )
    app.add_config_value(
        "book_backmatter_prefix", "appendix/", "env", types=frozenset({str})
    )
    app.set_translator("latex", BookLaTeXTranslator, override=True)
    app.add_transform(JoinJapaneseLines)
    app.connect("builder-inited", _prefer_png_in_epub)
    app.connect("html-page-context", _sort_genindex)
    return {
        "version": "1.0",
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
