"""easy_transformer.code_tokenizer のテスト。

参照実装は Python 自身: 字句の区切りは標準ライブラリの tokenize、予約語は
keyword、演算子は token.EXACT_TOKEN_TYPES と比べる。decode したコードは、
tokenize で同じ字句の列に、ast で同じ構文木になることを確かめる。
"""

from __future__ import annotations

import ast
import io
import json
import keyword
import textwrap
import token
import tokenize
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from easy_transformer import code_tokenizer, tokenizer
from easy_transformer.code_tokenizer import CONTINUATION, CodeTokenizer

SAMPLE = '''\
"""モジュールの説明。"""
import os
from . import sibling
from ..parent import thing


class HTTPServer(BaseServer):
    MAX_SIZE = 1_000  # 上限

    def __init__(self, port: int = 8080, *args, **kwargs) -> None:
        # ブロックの先頭のコメント
        self.port = port
        self.getUserName = lambda x: x + 1
        if port > 0 and not self.isReady(): return
        label = f"port={port!r:>10} {{braces}}"; z = 1 .real
        values = [1, 2,
                  3]
        values[1:2] = -1
        text = 'a' 'b' r"c\\d"; data = b"bytes"
        for i in range(10):
            values += i ** 2
        while True:
            break
# 外側のコメント
def 関数(引数=None):
    return 引数 if 引数 is not None else 0x1F + 3.14e-2j
'''

# decode でそのまま戻る、正規化済みのコード
NORMALIZED = """\
def add(first_value, secondValue=1):
    # 足し算
    if first_value > 0 and not secondValue:
        return first_value+secondValue  # 正の数
    return [first_value, (
        secondValue)]
"""


def lexemes(code: str) -> list[tuple[int, str]]:
    """tokenize による字句の列。空白と字下げは正規化されるので種類だけ。"""
    layout = {
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.NEWLINE,
        tokenize.NL,
        tokenize.ENDMARKER,
    }
    return [
        (t.type, "" if t.type in layout else t.string)
        for t in tokenize.generate_tokens(io.StringIO(code).readline)
    ]


@cache
def trained() -> CodeTokenizer:
    # テストに出てくる文字がすべて語彙に入るように、テストのコードも混ぜる
    sources = [tokenizer.__file__, code_tokenizer.__file__, __file__]
    corpus = "\n".join(Path(p).read_text(encoding="utf-8") for p in sources)
    tok = CodeTokenizer()
    tok.train(corpus)
    return tok


def test_keywords_and_operators_are_single_tokens() -> None:
    tok = trained()
    expected = [
        s
        for kind, s in lexemes(SAMPLE)
        if kind == tokenize.OP or keyword.iskeyword(s)
    ]
    tokens = tok.tokenize(SAMPLE)
    # 識別子の先頭の部分語が予約語と同じ綴りのこともある（isReady の is）。
    # そのときは後ろに印付きの部分語が続くので、区別できる
    got = [
        t
        for t, following in zip(tokens, [*tokens[1:], ""], strict=True)
        if (t in token.EXACT_TOKEN_TYPES or keyword.iskeyword(t))
        and not following.startswith(CONTINUATION)
    ]
    assert got == expected
    assert all(t in tok.token_to_id for t in expected)


@pytest.mark.parametrize(
    ("identifier", "parts"),
    [
        ("getUserName", ["get", "User", "Name"]),
        ("user_name", ["user", "_", "name"]),
        ("HTTPServer", ["HTTP", "Server"]),
        ("parseHTTPResponse2", ["parse", "HTTP", "Response", "2"]),
        ("MAX_SIZE", ["MAX", "_", "SIZE"]),
        ("__init__", ["__", "init", "__"]),
        ("utf8_decode", ["utf", "8", "_", "decode"]),
        ("x", ["x"]),
        ("関数名", ["関数名"]),
    ],
)
def test_identifier_split(identifier: str, parts: list[str]) -> None:
    marked = [parts[0], *(CONTINUATION + p for p in parts[1:])]
    assert CodeTokenizer().split(identifier) == [*marked, "\n"]


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=20).filter(str.isidentifier))
def test_identifier_split_covers_every_character(identifier: str) -> None:
    parts = code_tokenizer.IDENTIFIER_PART.findall(identifier)
    assert "".join(parts) == identifier


def test_numbers_are_split_into_characters() -> None:
    pieces = CodeTokenizer().split("x = 3.14\n")
    assert pieces == ["x", "=", "3", "##.", "##1", "##4", "\n"]


def test_layout_tokens() -> None:
    pieces = CodeTokenizer().split("if a:\n    b\nc\n")
    assert pieces == (
        ["if", "a", ":", "\n", "<indent>", "b", "\n", "<dedent>", "c", "\n"]
    )


def test_unknown_pieces_are_spelled_out() -> None:
    tok = trained()
    name = "qwertyZxcvb"  # 学習コーパスに無い識別子
    tokens = tok.tokenize(f"{name}\n")
    assert tokens[:3] == ["q", "##w", "##e"]
    assert "<unk>" not in tokens
    assert tok.decode(tok.encode(f"{name}\n")) == f"{name}\n"
    # 学習コーパスに無い ASCII 以外の文字は <unk> になる
    assert "<unk>" in tok.tokenize("x = '\u16a0'\n")


def test_normalized_code_roundtrips_exactly() -> None:
    tok = trained()
    assert tok.decode(tok.encode(NORMALIZED)) == NORMALIZED


def test_whitespace_normalization_rules() -> None:
    tok = trained()
    source = textwrap.dedent(
        """\
        if x :
          y=f( a = 1 ,b=2 )   # c
        # 外のコメント
        z = 1 .real
        """
    )
    assert tok.decode(tok.encode(source)) == textwrap.dedent(
        """\
        if x:
            y = f(a=1, b=2)  # c
        # 外のコメント
        z = 1 .real
        """
    )


def _check_same_program(tok: CodeTokenizer, source: str) -> None:
    assert "<unk>" not in tok.tokenize(source)
    decoded = tok.decode(tok.encode(source))
    assert lexemes(decoded) == lexemes(source)
    assert ast.dump(ast.parse(decoded)) == ast.dump(ast.parse(source))
    # 正規化したものをもう一度通しても変わらない
    assert tok.decode(tok.encode(decoded)) == decoded


def test_decode_gives_the_same_program() -> None:
    _check_same_program(trained(), SAMPLE)


@pytest.mark.parametrize(
    "module", [textwrap, json.decoder, tokenizer, code_tokenizer]
)
def test_decode_gives_the_same_program_for_real_modules(
    module: object,
) -> None:
    path = getattr(module, "__file__", None)
    assert path is not None
    _check_same_program(trained(), Path(path).read_text(encoding="utf-8"))


def test_fstrings_are_kept_verbatim() -> None:
    tok = trained()
    source = 'x = f"{a!r:>{w}}, {b}  {{c}}"\n'
    assert tok.decode(tok.encode(source)) == source


@pytest.mark.parametrize(
    "source", ["x = (1,\n", "x = $\n", "s = 'unterminated\n", "x = 1)\n"]
)
def test_invalid_code_is_rejected(source: str) -> None:
    with pytest.raises(ValueError, match="Python の"):
        trained().encode(source)


def test_bad_training_inputs() -> None:
    tok = CodeTokenizer()
    with pytest.raises(ValueError, match="学習コーパスが空です"):
        tok.train("")
    with pytest.raises(
        ValueError, match="max_vocab_size=10 は小さすぎます"
    ):
        tok.train("x = 1\n", max_vocab_size=10)
