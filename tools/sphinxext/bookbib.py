"""参考文献の書式と並び順（sphinxcontrib-bibtex に足す style）。

book/references.bib の文献を、付録「参考文献」の一覧（``{bibliography}``）と
本文の引用（``{cite:p}``・``{cite:alp}``・``{cite:t}``）に整える。

- 一覧の 1 項目: 太字の「著者 (年)」、著者の全員、題名、掲載先・年、
  本書での位置づけ（``annote``）の順。
- 引用: ``{cite:p}`` は「（Vaswani et al., 2017）」、``{cite:alp}`` は括弧なしの
  「Vaswani et al., 2017」、``{cite:t}`` は「Xiong et al. (2020)」。
  著者の表記は 1 人なら姓、2 人なら「A and B」、3 人以上なら「A et al.」。
  著者が漢字・かななら「山田」「山田・鈴木」「山田ほか」。
- 並び順: 英字の著者（A〜Z）を先に、続いて漢字・かなの著者を読み
  （``yomi`` か ``sortkey``）の五十音順。同じ著者の中では年の順。

pybtex の style（一覧）と sphinxcontrib-bibtex の referencing style（引用）は
どちらもここの :func:`author_label` と :func:`year_label` を使うので、
一覧のラベルと本文の引用の表記は必ず一致する。
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pybtex.plugin
from docutils import nodes
from pybtex.database import Entry, Person
from pybtex.richtext import BaseText, Tag, Text
from pybtex.style import FormattedEntry
from pybtex.style.formatting import BaseStyle
from pybtex.style.template import join, node
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinxcontrib.bibtex.plugin import register_plugin
from sphinxcontrib.bibtex.style.referencing import (
    BaseReferenceStyle,
    BracketStyle,
    GroupReferenceStyle,
)
from sphinxcontrib.bibtex.style.template import (
    join2,
    post_text,
    pre_text,
    reference,
)
from yomi import _plain

STYLE_NAME = "book"  # bibtex_default_style
REFERENCE_STYLE_NAME = "book"  # bibtex_reference_style

# 漢字・かな（全角・半角）
_JAPANESE = re.compile(
    r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uff66-\uff9f]"
)
# 注記の中の *斜体* と `等幅`
_MARKUP = re.compile(r"\*(?P<em>[^*]+)\*|`(?P<tt>[^`]+)`")


def is_japanese(text: str) -> bool:
    return bool(_JAPANESE.search(text))


def authors(entry: Entry) -> tuple[list[Person], bool]:
    """著者の並びと、「and others」で切ってあるか。"""
    persons = list(entry.persons.get("author", []))
    truncated = bool(persons) and str(persons[-1]) == "others"
    if truncated:
        persons = persons[:-1]
    return persons, truncated


def surname(person: Person) -> str:
    return " ".join(person.prelast_names + person.last_names)


def full_name(person: Person) -> str:
    """英字の名前は「名 姓」、漢字・かなの名前は「姓名」。"""
    last = surname(person)
    first = " ".join(person.first_names + person.middle_names)
    if is_japanese(last):
        return last + first.replace(" ", "")
    return " ".join(
        part for part in (first, last, *person.lineage_names) if part
    )


def author_label(entry: Entry) -> str:
    """引用と一覧のラベルの著者の部分（「Vaswani et al.」など）。"""
    persons, truncated = authors(entry)
    names = [surname(p) for p in persons]
    if not names:
        return str(entry.fields["title"])
    japanese = is_japanese(names[0])
    if len(names) == 1 and not truncated:
        return names[0]
    if len(names) == 2 and not truncated:
        return ("・" if japanese else " and ").join(names)
    return names[0] + ("ほか" if japanese else " et al.")


def year_label(entry: Entry) -> str:
    """ラベルの年。同じ著者・同じ年の文献は labelyear で 2020a・2020b と分ける。"""
    return str(
        entry.fields.get("labelyear") or entry.fields.get("year", "n.d.")
    )


def label(entry: Entry) -> str:
    return f"{author_label(entry)} ({year_label(entry)})"


def _normalize(text: str) -> str:
    """並べる鍵: カタカナをひらがなに、NFKC、小文字、アクセントを外す。"""
    kana = "".join(
        chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in text
    )
    return _plain(unicodedata.normalize("NFKC", kana).casefold())


def sort_key(entry: Entry) -> tuple[int, str, str, str, str, str, str]:
    """著者の姓（読み）→ 年 → 第 1 著者の姓名 → 残りの著者の姓 → 題名。

    英字の著者を先に、漢字・かなの著者を読みの五十音順で後に並べる。
    漢字の著者に読み（yomi）が無い文献は末尾に回す（テストが検出する）。
    """
    persons, _ = authors(entry)
    fields = entry.fields
    reading = fields.get("sortkey") or fields.get("yomi")
    if reading:
        words = reading.split()
        first, whole = words[0], reading
    elif persons:
        first, whole = surname(persons[0]), full_name(persons[0])
    else:
        first = whole = fields.get("title", "")
    first = _normalize(first)
    if first[:1].isascii():
        group = 0
    elif is_japanese(first) and not re.search(r"[\u3400-\u9fff]", first):
        group = 1  # かなの読み
    else:
        group = 2  # 読みの無い漢字
    rest = " ".join(surname(p) for p in persons[1:])
    return (
        group,
        first,
        fields.get("year", ""),
        _normalize(whole),
        _normalize(rest),
        _normalize(fields.get("title", "")),
        entry.key,
    )


def _markup(text: str) -> Text:
    """注記の *斜体* と `等幅` を pybtex の richtext にする。"""
    parts: list[str | BaseText] = []
    pos = 0
    for m in _MARKUP.finditer(text):
        parts.append(text[pos : m.start()])
        if m.group("em") is not None:
            parts.append(Tag("em", m.group("em")))
        else:
            parts.append(Tag("tt", m.group("tt")))
        pos = m.end()
    parts.append(text[pos:])
    return Text(*[p for p in parts if p])


def _date(fields: Any) -> str:
    if "pubdate" in fields:
        return str(fields["pubdate"])
    year = fields.get("year", "n.d.")
    if "month" in fields and "day" in fields:
        return f"{year} 年 {fields['month']} 月 {fields['day']} 日"
    return str(year)


def _venue(entry: Entry) -> Text:
    """掲載先・巻号・ページ・年（と注記）。末尾に句点を付ける。"""
    f = entry.fields
    parts: list[str | BaseText] = []
    date = _date(f)
    note: list[str | BaseText] = []
    if "note" in f:
        note = ["（", _markup(f["note"]), "）"]
    eprint_after = ""
    if entry.type == "book":
        parts = [f["publisher"], ", ", date, *note, "."]
    elif entry.type in ("inproceedings", "article"):
        parts = [Tag("em", f.get("booktitle") or f["journal"])]
        if entry.type == "inproceedings" and "volume" in f:
            if "series" in f:
                parts.append(f", {f['series']} {f['volume']}")
            else:
                parts.append(f", Volume {f['volume']}")
        elif "volume" in f:
            parts.append(f", {f['volume']}")
        if "number" in f:
            parts.append(f"({f['number']})")
        if "pages" in f:
            parts.append(f", pp. {f['pages']}")
        parts += [", ", date, *note, "."]
        if "eprint" in f:
            eprint_after = f" arXiv:{f['eprint']}."
    elif "eprint" in f:
        parts = [f"arXiv:{f['eprint']}, ", date, *note, "."]
    else:
        where = f.get("institution") or f.get("howpublished") or ""
        parts = [f"{where}, " if where else "", date, *note, "."]
    return Text(*[p for p in parts if p], eprint_after)


def _title(entry: Entry) -> Text:
    title = entry.fields["title"]
    if entry.type == "book":
        edition = entry.fields.get("edition")
        return Text(
            Tag("em", title), f", {edition} ed." if edition else "."
        )
    end = "" if title[-1:] in ".?!" else "."
    return Text(f'"{title}{end}"')


def format_text(entry: Entry) -> Text:
    """一覧の 1 項目の本文（ラベルを含む）。"""
    persons, truncated = authors(entry)
    names = ", ".join(full_name(p) for p in persons)
    if truncated:
        names += ", et al."
    parts: list[str | BaseText] = [
        Tag("b", label(entry)),
        " ",
        names + ("" if names.endswith(".") else "."),
        " ",
        _title(entry),
        " ",
        _venue(entry),
    ]
    if "annote" in entry.fields:
        parts += [" ", Text("（", _markup(entry.fields["annote"]), "）")]
    return Text(*parts)


class BookStyle(BaseStyle):  # type: ignore[misc]
    """付録の一覧の書式と並び順（pybtex の formatting style）。"""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # BaseStyle.__init__ は sort と format_labels をインスタンスの属性として
        # 既定の style のものに差し替えるので、ここで本書のものに戻す
        self.sort = self.sort_entries
        self.format_labels = self.label_entries

    def sort_entries(self, entries: Iterable[Entry]) -> list[Entry]:
        return sorted(entries, key=sort_key)

    def label_entries(
        self, sorted_entries: Iterable[Entry]
    ) -> Iterator[str]:
        for entry in sorted_entries:
            yield label(entry)

    def format_entry(
        self, label: str, entry: Entry, bib_data: Any = None
    ) -> FormattedEntry:
        return FormattedEntry(entry.key, format_text(entry), label)


# ---- 本文の引用（sphinxcontrib-bibtex の referencing style） ----------------


@node  # type: ignore[untyped-decorator,misc]
def _author(children: list[Any], data: dict[str, Any]) -> Text:
    assert not children
    return Text(author_label(data["entry"]))


@node  # type: ignore[untyped-decorator,misc]
def _year(children: list[Any], data: dict[str, Any]) -> Text:
    assert not children
    return Text(year_label(data["entry"]))


def _brackets() -> BracketStyle:
    # 本文の括弧は全角。複数の文献は読点で区切る
    return BracketStyle(left="（", right="）", sep="、")


@dataclass
class ParentheticalStyle(BaseReferenceStyle):
    """{cite:p} は「（Vaswani et al., 2017）」、{cite:alp} は括弧なし。"""

    bracket: BracketStyle = field(default_factory=_brackets)

    def role_names(self) -> Iterable[str]:
        return ["p", "alp"]

    def outer(self, role_name: str, children: list[BaseText]) -> Any:
        return self.bracket.outer(children, brackets=role_name == "p")

    def inner(self, role_name: str) -> Any:
        return join2(sep1=" ", sep2=", ")[
            pre_text,
            reference[join(sep=", ")[_author, _year]],
            post_text,
        ]


@dataclass
class TextualStyle(BaseReferenceStyle):
    """{cite:t} は「Xiong et al. (2020)」（全体が付録へのリンク）。"""

    bracket: BracketStyle = field(default_factory=_brackets)

    def role_names(self) -> Iterable[str]:
        return ["t"]

    def outer(self, role_name: str, children: list[BaseText]) -> Any:
        return self.bracket.outer(children, brackets=False)

    def inner(self, role_name: str) -> Any:
        return join2(sep1=" ", sep2=", ")[
            pre_text,
            reference[join[_author, " (", _year, ")"]],
            post_text,
        ]


@dataclass
class BookReferenceStyle(GroupReferenceStyle):
    def __post_init__(self) -> None:
        self.styles.extend([ParentheticalStyle(), TextualStyle()])
        super().__post_init__()  # type: ignore[no-untyped-call]


# ---- 一覧を付録の中に置く ---------------------------------------------------


class InlineBibliography(SphinxPostTransform):
    """{bibliography} が作る citation の並びを、ふつうの段落の並びに置き換える。

    sphinxcontrib-bibtex の引用は citation の一覧（:list: citation）にしか
    解決しないが、Sphinx の LaTeX ビルダーは citation を文書の末尾の
    thebibliography に集めてしまう（sphinxcontrib-bibtex の issue #156）。
    引用の解決に要るのは citation の id だけなので、sphinxcontrib-bibtex が一覧を
    作った直後（優先度 5 の次）に、各 citation を「id を持つ段落」に置き換える。
    こうすると PDF でも一覧は付録の章の中に残り、本文の引用はその段落
    （LaTeX では段落の頭に置く同じ名前の hypertarget）へのリンクになる。
    HTML・EPUB でも同じ形（太字のラベルで始まる段落）になり、citation の
    [ラベル] の欄は出ない。
    """

    default_priority = 6

    def run(self, **kwargs: Any) -> None:
        for citation in list(self.document.findall(nodes.citation)):
            if "docname" not in citation:  # sphinxcontrib-bibtex のものだけ
                continue
            body = [
                child.deepcopy()
                for child in citation.children
                if not isinstance(child, nodes.label)
            ]
            first = body[0] if body else None
            if not isinstance(first, nodes.paragraph):
                continue
            # 引用のリンク先の id は項目の段落に付ける（HTML・EPUB の錨）
            first["ids"] = list(citation["ids"])
            first["classes"].append("bibliography-entry")
            # LaTeX の引用は \hyperlink{cite.<文書>:<id>}（sphinxcontrib-bibtex が
            # \bibitem の錨の名前に合わせて出す）なので、同じ名前の錨を段落の頭に置く
            # （HTML・EPUB の書き出しは format="latex" の raw を無視する）
            anchors = "".join(
                f"\\hypertarget{{cite.{citation['docname']}:{id_}}}{{}}"
                for id_ in citation["ids"]
            )
            first.insert(0, nodes.raw("", anchors, format="latex"))
            citation.replace_self(body)


def register() -> None:
    """pybtex のプラグインとして登録する（2 度目以降は何もしない）。"""
    pybtex.plugin.register_plugin(
        "pybtex.style.formatting", STYLE_NAME, BookStyle
    )
    register_plugin(
        "sphinxcontrib.bibtex.style.referencing",
        REFERENCE_STYLE_NAME,
        BookReferenceStyle,
    )


def setup(app: Sphinx) -> dict[str, Any]:
    register()
    app.add_post_transform(InlineBibliography)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
