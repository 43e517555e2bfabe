"""第19章: 本書の原稿から日本語の地の文を取り出し、トークン数を測る。

`prose` は MyST の記法（コードブロック、指示の行、ラベル、数式、
インラインのコード、ロール）を取り除いた地の文を返す。
`char_costs` は、各文字が何トークン分に当たるかを、トークンのバイトを
文字に按分して求める。計測の本体は benchmarks/bench_ch19_japanese.py。
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from easy_transformer.tokenizer import ByteLevelBPETokenizer

# 地の文から消すもの（上から順に当てる）
_FENCE = re.compile(r"^(`{3,}|~{3,}).*?^\1\s*$", re.M | re.S)
_MATH_BLOCK = re.compile(r"^\$\$.*?^\$\$\s*$", re.M | re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
# {ref}`表示 <ラベル>` は表示の文字列を残し、{numref}`ラベル` は消す
_ROLE_WITH_TEXT = re.compile(r"\{[a-z]+\}`([^`<]*?)\s*<[^`]*>`")
_ROLE_TERM = re.compile(r"\{(?:term|index)\}`([^`]*)`")
_ROLE = re.compile(r"\{[a-z]+\}`[^`]*`")
_INLINE = re.compile(r"`[^`]*`|\$[^$\n]+\$|\{\{[^}]*\}\}")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"\*\*|^#+\s*|^\s*(?:[-*]|\d+\.)\s+", re.M)
# 行ごと捨てるもの: ラベル、% のコメント、コロンのフェンス、指示の
# オプション、表の行
_DROP_LINE = re.compile(r"^\s*(?:\(.*\)=|%|:::|:[a-z-]+:|\|)")


def prose(markdown: str) -> str:
    """MyST の原稿から、地の文だけを取り出す（1 行 1 文のまま）。"""
    text = _COMMENT.sub("", markdown)
    text = _FENCE.sub("", text)
    text = _MATH_BLOCK.sub("", text)
    text = _ROLE_WITH_TEXT.sub(r"\1", text)
    text = _ROLE_TERM.sub(r"\1", text)
    text = _ROLE.sub("", text)
    text = _INLINE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _MARKUP.sub("", text)
    lines = (ln.strip() for ln in text.splitlines())
    return "\n".join(ln for ln in lines if ln and not _DROP_LINE.match(ln))


def char_kind(c: str) -> str:
    """文字の種類: ひらがな・カタカナ・漢字・ASCII・その他。"""
    if c.isascii():
        return "ASCII"
    if "\u3041" <= c <= "\u309f":
        return "ひらがな"
    if "\u30a0" <= c <= "\u30ff":  # 長音符「ー」を含む
        return "カタカナ"
    if "\u4e00" <= c <= "\u9fff" or c == "々":
        return "漢字"
    return "その他"


@dataclass
class CharCost:
    """1 文字の計測結果。"""

    char: str
    share: float  # その文字に按分したトークンの数
    pieces: int  # その文字のバイトにかかるトークンの数


def char_costs(tok: ByteLevelBPETokenizer, text: str) -> list[CharCost]:
    """text の各文字が、トークン何個分に当たるかを求める。

    トークンが 2 文字以上にまたがるときは、トークン 1 個を、含むバイト
    の数で各文字に按分する（全文字の share の和はトークンの数になる）。
    pieces が 2 以上の文字は、バイトの途中でトークンが切れている。
    """
    # 各トークンのバイト数（語彙の文字列は 1 文字が 1 バイトに当たる）
    sizes = [len(t) for t in tok.tokenize(text)]
    costs = []
    t, used = 0, 0  # 今のトークンの番号と、そのうち使ったバイト数
    for c in text:
        need = len(c.encode("utf-8"))
        share, pieces = 0.0, 0
        while need > 0:
            take = min(need, sizes[t] - used)
            share += take / sizes[t]
            pieces += 1
            need -= take
            used += take
            if used == sizes[t]:
                t, used = t + 1, 0
        costs.append(CharCost(c, share, pieces))
    return costs
