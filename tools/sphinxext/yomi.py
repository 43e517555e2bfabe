"""索引語と用語の読み（五十音順に並べるための鍵）。

PDF の索引（mendex）と同じ読みの辞書 book/_latex/easy-transformer.dic を使い、
付録の用語集（tools/sort_glossary.py）と HTML の索引（bookext.py）を
同じ規則で並べる。規則: 英字で始まる語を先頭に（A〜Z の見出し）、続いて
かなの読みの五十音順（濁点・半濁点は無視。「が」は「か」の位置）。
見出しは英字なら大文字 1 字、かななら行の先頭（あ・か・さ・た・な・は・ま・や・ら・わ）。
"""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DIC = ROOT / "book" / "_latex" / "easy-transformer.dic"

# 行の先頭の文字と、その行に入るかな（清音。濁音は NFD で清音にしてから引く）
_ROWS = (
    ("あ", "ぁあぃいぅうゔぇえぉお"),
    ("か", "ゕかきくけこゖ"),
    ("さ", "さしすせそ"),
    ("た", "たちっつてと"),
    ("な", "なにぬねの"),
    ("は", "はひふへほ"),
    ("ま", "まみむめも"),
    ("や", "ゃやゅゆょよ"),
    ("ら", "らりるれろ"),
    ("わ", "ゎわゐゑをん"),
)


@cache
def readings(dic: Path = DIC) -> tuple[tuple[str, str], ...]:
    """（語, 読み）の組。長い語から先に置き換えるよう、長さの降順。"""
    pairs = []
    for line in dic.read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            word, yomi = line.split("\t", 1)
            pairs.append((word.strip(), yomi.strip()))
    return tuple(sorted(pairs, key=lambda p: len(p[0]), reverse=True))


def reading(term: str) -> str:
    """語の読み（ひらがな、NFKC、小文字）。辞書に無い漢字はそのまま残る。"""
    # 辞書には「値（value）」のように括弧の英語まで含む項目もあるので、
    # 置き換えてから括弧の前を取る
    text = term
    for word, yomi in readings():
        text = text.replace(word, yomi)
    head = text.split("（")[0]
    # カタカナをひらがなにそろえる（長音などは NFKC のまま）
    kana = "".join(
        chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in head
    )
    return unicodedata.normalize("NFKC", kana).casefold()


def _plain(kana: str) -> str:
    """濁点・半濁点を外した形（辞書の並べ方）。"""
    return "".join(
        c
        for c in unicodedata.normalize("NFD", kana)
        if not unicodedata.combining(c)
    )


def sort_key(term: str) -> tuple[int, str, str]:
    """英字で始まる語を先に、続いて読みの五十音順。"""
    kana = reading(term)
    ascii_first = 0 if kana[:1].isascii() else 1
    return (ascii_first, _plain(kana), kana)


def group_label(term: str) -> str:
    """索引の見出し: 英字は大文字 1 字、かなは行の先頭の字、ほかは「記号」。"""
    first = _plain(reading(term))[:1]
    if first.isascii() and first.isalpha():
        return first.upper()
    for label, members in _ROWS:
        if first in members:
            return label
    return "記号・その他"
