"""Python のコード用のトークナイザ: 字句解析とサブワード分割を組み合わせる。

コンパイラの字句解析器は、文法に従って予約語・演算子・識別子・リテラル
を切り出す。言語モデルのトークナイザは、出現頻度から語彙を作る。
`CodeTokenizer` はこの 2 つを次のように組み合わせる。

1. Python 自身の字句解析器（標準ライブラリの tokenize）で字句に分ける。
2. 予約語と演算子は、そのまま 1 トークンにする。
3. 識別子は snake_case と camelCase の境目で部分語に分ける。
4. 数値は 1 文字ずつ、文字列とコメントは単語・空白・記号に分ける。
5. 語彙に無い部分語は、さらに 1 文字ずつに分ける。

1 つの字句を分けた 2 つ目以降の部分には印 `##` を付け、decode で前に
つなぐ。字句の間の空白は捨て、decode で規則どおりに入れ直す。
"""

from __future__ import annotations

import io
import keyword
import re
import string
import token
import tokenize
from collections import Counter
from collections.abc import Iterator, Sequence

from easy_transformer.tokenizer import UNK, VocabTokenizer

# 前の部分につながる印（BERT の WordPiece と同じ）
CONTINUATION = "##"
# 行の区切りと字下げの増減。Python ではインデントが構文なので残す
NEWLINE, INDENT, DEDENT = LAYOUT_TOKENS = ("\n", "<indent>", "<dedent>")
INDENT_UNIT = "    "
OPERATORS = sorted(token.EXACT_TOKEN_TYPES)  # 演算子と区切り記号
OPEN, CLOSE = ("(", "[", "{"), (")", "]", "}")
# 括弧の外では前後に空白を置く演算子: 代入、比較、戻り値の型注釈。
# 括弧の中の = はキーワード引数なので、PEP 8 どおり詰める
SPACED_OPERATORS = {
    *("=", "+=", "-=", "*=", "/=", "//=", "%=", "**=", "@="),
    *("&=", "|=", "^=", "<<=", ">>=", ":="),
    *("==", "!=", "<", ">", "<=", ">=", "->"),
}
# 値を表す予約語は、予約語の前後を空ける規則から外す（f(x=None) のため）
VALUE_KEYWORDS = ("True", "False", "None")

# 識別子の部分語。上から順に試す
IDENTIFIER_PART = re.compile(
    r"""
    _+                        # snake_case の区切りの下線
    | [A-Z]+(?=[A-Z][a-z])    # 頭字語（HTTPServer の HTTP）
    | [A-Z]?[a-z]+            # 小文字の語（getUserName の get, User）
    | [A-Z]+                  # 大文字だけの語（MAX_SIZE の MAX）
    | [0-9]+                  # 数字（utf8 の 8）
    | [^_A-Za-z0-9]+          # ASCII 以外（日本語の識別子など）
    """,
    re.VERBOSE,
)
# 文字列リテラルとコメントの部分: 単語、空白の並び、記号 1 つ
TEXT_PART = re.compile(r"\w+|\s+|[^\w\s]")


class CodeTokenizer(VocabTokenizer):
    """Python のコードを、字句解析の結果に沿ってトークンに分ける。

    語彙は、特殊トークン、構文の単位（改行・字下げの増減・予約語・
    演算子）、1 文字のトークン、コーパスに多く出てくる部分語の順に並ぶ。
    学習コーパスに無かった ASCII 以外の文字は `<unk>` になる。

    decode は空白を次の規則で正規化したコードを返す。tokenize で読んだ
    字句の列（コメントを含む）と ast で読んだ構文木は元のコードと同じ。

    - 字下げは 1 段につき空白 4 つ。括弧の中で改行した続きの行は 1 段
      深くする。改行と空行は元のまま。
    - 行の中では、字句をくっつけると別の字句に読めてしまうところ
      （`if x`、`1 .real`、`= =`）に空白を入れる。
    - 読みやすさのために、`,` と `;` の後ろ、予約語の前後、括弧の外の
      `:` の後ろと代入・比較演算子の前後に空白を 1 つ、行末のコメントの
      前に空白を 2 つ入れる。
    - コメントだけの行は、次のコードの行と同じ深さに字下げする。
    """

    def split(self, text: str) -> list[str]:
        pieces: list[str] = []
        for kind, lexeme in _lex(text):
            if kind in (tokenize.NEWLINE, tokenize.NL):
                pieces.append(NEWLINE)
            elif kind == tokenize.INDENT:
                pieces.append(INDENT)
            elif kind == tokenize.DEDENT:
                pieces.append(DEDENT)
            elif kind == tokenize.OP or keyword.iskeyword(lexeme):
                pieces.append(lexeme)
            elif kind != tokenize.ENDMARKER:
                parts = _subwords(kind, lexeme)
                pieces += [parts[0], *(CONTINUATION + p for p in parts[1:])]
        return pieces

    def reserved_tokens(self, counts: Counter[str]) -> list[str]:
        """構文の単位と、語彙に無い部分語を綴るための 1 文字のトークン。

        1 文字のトークンは、ASCII の印字できる文字とコーパスに出てくる
        文字のそれぞれについて、印なしと印付きの 2 つ。
        """
        chars = set(string.printable).union(
            *(p.removeprefix(CONTINUATION) for p in counts)
        )
        return [
            *LAYOUT_TOKENS,
            *keyword.kwlist,
            *OPERATORS,
            # 字句は空白で始まらないので、印なしの空白文字は要らない
            *(c for c in sorted(chars) if not c.isspace()),
            *(CONTINUATION + c for c in sorted(chars)),
        ]

    def tokenize(self, text: str) -> list[str]:
        tokens: list[str] = []
        for piece in self.split(text):
            if piece in self.token_to_id:
                tokens.append(piece)
            else:
                tokens += self._spell(piece)
        return tokens

    def _spell(self, piece: str) -> list[str]:
        """語彙に無い部分語を 1 文字ずつに分ける。2 文字目からは印付き。"""
        first = CONTINUATION if piece.startswith(CONTINUATION) else ""
        chars = piece.removeprefix(CONTINUATION)
        spelled = [first + chars[0], *(CONTINUATION + c for c in chars[1:])]
        return [t if t in self.token_to_id else UNK for t in spelled]

    def detokenize(self, tokens: Sequence[str]) -> str:
        rendered = []
        brackets = 0  # 開いている括弧の数（行をまたいで数える）
        for depth, line in _lines(_join_continuations(tokens)):
            parts = []
            for i, lexeme in enumerate(line):
                if i == 0:
                    # 括弧の中で改行した続きの行は 1 段深くする
                    extra = 1 if brackets > 0 else 0
                    parts.append(INDENT_UNIT * (depth + extra))
                else:
                    parts.append(_separator(line[i - 1], lexeme, brackets))
                parts.append(lexeme)
                if lexeme in OPEN:
                    brackets += 1
                elif lexeme in CLOSE:
                    brackets -= 1
            rendered.append("".join(parts))
        return "\n".join(rendered)


def _lex(code: str) -> Iterator[tuple[int, str]]:
    """Python の字句解析器で（字句の種類, 字句の文字列）を順に返す。"""
    lines = io.StringIO(code).readlines()
    fstring_start: tuple[int, int] | None = None
    nesting = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            name = tokenize.tok_name[tok.type]
            if tok.type == tokenize.ERRORTOKEN:
                raise ValueError(
                    f"{tok.start[0]} 行目の {tok.string!r} は Python の"
                    "字句になりません。Python のコードを渡してください。"
                )
            # Python 3.12 からは f 文字列が中身の字句に分かれて出てくる。
            # 空白を正規化すると中身が変わるので、元の 1 つの字句に戻す
            if name.endswith("STRING_START"):
                nesting += 1
                fstring_start = fstring_start or tok.start
            elif name.endswith("STRING_END") and nesting:
                nesting -= 1
                if nesting == 0 and fstring_start is not None:
                    text = _source_slice(lines, fstring_start, tok.end)
                    yield tokenize.STRING, text
                    fstring_start = None
            elif nesting == 0:
                yield tok.type, tok.string
    except (tokenize.TokenError, SyntaxError) as e:
        raise ValueError(
            f"Python のコードとして字句解析できません（{e}）。括弧や引用符"
            "が閉じているか、字下げがそろっているか確かめてください。"
        ) from e


def _source_slice(
    lines: list[str], start: tuple[int, int], end: tuple[int, int]
) -> str:
    """（行, 列）で表した start から end までの元のコードを返す。"""
    (row1, col1), (row2, col2) = start, end
    if row1 == row2:
        return lines[row1 - 1][col1:col2]
    first, last = lines[row1 - 1][col1:], lines[row2 - 1][:col2]
    return "".join([first, *lines[row1 : row2 - 1], last])


def _subwords(kind: int, lexeme: str) -> list[str]:
    """予約語・演算子以外の字句を部分語に分ける。"""
    if kind == tokenize.NAME:
        return IDENTIFIER_PART.findall(lexeme)
    if kind == tokenize.NUMBER:
        # 数は無限にあるので、数字 1 つずつにすれば語彙が有限で済む
        return list(lexeme)
    return TEXT_PART.findall(lexeme)


def _join_continuations(tokens: Sequence[str]) -> list[str]:
    """印の付いたトークンを前につなぎ、字句の列に戻す。"""
    lexemes: list[str] = []
    for t in tokens:
        part = t.removeprefix(CONTINUATION)
        if part != t and lexemes and lexemes[-1] not in LAYOUT_TOKENS:
            lexemes[-1] += part
        else:
            lexemes.append(part)
    return lexemes


def _lines(lexemes: list[str]) -> list[tuple[int, list[str]]]:
    """字句の列を行に分け、各行の字下げの深さを決める。

    最後の要素は最後の改行のあとの残り（ふつうは空）。
    """
    lines: list[tuple[int, list[str]]] = []
    depth = 0
    line: list[str] = []
    line_depth = 0
    for lexeme in lexemes:
        if lexeme == INDENT:
            depth += 1
        elif lexeme == DEDENT:
            depth = max(depth - 1, 0)
        elif lexeme == NEWLINE:
            lines.append((line_depth, line))
            line = []
        else:
            if not line:
                line_depth = depth  # 行の最初の字句の時点の深さ
            line.append(lexeme)
    lines.append((line_depth if line else depth, line))
    # 字句解析器は INDENT/DEDENT を次のコードの行の直前に出すので、
    # コメントだけの行と空行は、次のコードの行と同じ深さにそろえる
    following = depth
    for i in reversed(range(len(lines))):
        line_depth, line = lines[i]
        if line and not line[0].startswith("#"):
            following = line_depth
        else:
            lines[i] = (following, line)
    return lines


def _separator(left: str, right: str, brackets: int) -> str:
    """同じ行で隣り合う字句 left と right の間に入れる空白。"""
    if right.startswith("#"):
        return "  "
    if _would_merge(left, right):
        return " "
    if left in (",", ";") or (brackets == 0 and left == ":"):
        return " "
    if left[-1] in "'\"" and _is_name_char(right[0]):
        return " "  # 文字列の連結 'a' r"b"
    if _is_spaced_keyword(left) and right not in (":", ",", ";", *CLOSE):
        return " "  # if (x)、return -1、from . import
    if _is_spaced_keyword(right) and (
        left in (*CLOSE, ".") or left not in OPERATORS
    ):
        return " "  # f(x) if y、"a" if b、from .. import
    spaced = left in SPACED_OPERATORS or right in SPACED_OPERATORS
    if brackets == 0 and spaced:
        return " "
    return ""


def _would_merge(left: str, right: str) -> bool:
    """left と right をくっつけると、字句解析で別の字句に読めるか。"""
    if _is_name_char(left[-1]) and (
        _is_name_char(right[0]) or right[0] in "'\""
    ):
        return True  # if x → ifx、r "s" → r"s"（生文字列）
    if left[-1] in "'\"" and right[0] in "'\"":
        return True  # '' 'a' → '''a（三重引用符）
    if left[0].isdigit() and right[0] == ".":
        return True  # 1 .real → 1.real（小数）
    joined = left + right
    # 最長一致で left より長い演算子に読まれる（= = → ==）
    return any(
        len(op) > len(left) and joined.startswith(op) for op in OPERATORS
    )


def _is_spaced_keyword(lexeme: str) -> bool:
    """前後に空白を置く予約語か。"""
    return keyword.iskeyword(lexeme) and lexeme not in VALUE_KEYWORDS


def _is_name_char(c: str) -> bool:
    """識別子の 2 文字目以降に使える文字か。"""
    return ("_" + c).isidentifier()
