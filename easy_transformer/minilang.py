"""minilang: Transformer に学ばせる課題の題材にする小さな式言語。

整数・変数・四則演算・単項マイナス・括弧・代入だけを持つ。字句解析器、
再帰下降パーサ、評価器、スタックマシン向けのコード生成器と
スタックマシン、整形出力、確率文法による乱数プログラム生成を、
この順に上から並べてある。

文法（EBNF）::

    program   = sep* statement (sep+ statement)* sep*
    statement = NAME "=" expr | expr
    expr      = term (("+" | "-") term)*
    term      = unary (("*" | "/") unary)*
    unary     = "-" unary | atom
    atom      = NUMBER | NAME | "(" expr ")"
    sep       = ";" | 改行

- 二項演算子はすべて左結合で、``*`` ``/`` は ``+`` ``-`` より強く結び付く。
  単項マイナスはさらに強い（``-a * b`` は ``(-a) * b``）。
- ``/`` は床関数による整数除算で、Python の ``//`` と同じ
  （``7 / 2 == 3``、``-7 / 2 == -4``）。Python 自身を参照実装にして
  答え合わせができるように、この規則を選んだ。
- 改行は常に文の区切りなので、括弧の中でも式を改行で折り返せない。
- 数のリテラルは 0 以上の整数で、負の数は単項マイナスで表す。
- プログラムの値は最後の文の値で、代入文の値は代入した値とする。
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

# ----------------------------------------------------------------------
# エラー: どれも入力のどこで失敗したかを持つ
# ----------------------------------------------------------------------


@dataclass(frozen=True)
class Pos:
    """ソース中の位置。offset は 0 始まり、line と col は 1 始まり。"""

    offset: int
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.line}:{self.col}"


class MiniLangError(Exception):
    """minilang のすべてのエラーの基底クラス。"""


class LexError(MiniLangError):
    """字句解析のエラー（使えない文字）。"""

    def __init__(self, pos: Pos, char: str) -> None:
        super().__init__(f"{pos}: 使えない文字 {char!r} があります")
        self.pos = pos
        self.char = char


class ParseError(MiniLangError):
    """構文解析のエラー。どこで、何を期待して、何があったかを持つ。"""

    def __init__(self, pos: Pos, expected: str, found: str) -> None:
        super().__init__(
            f"{pos}: {expected}が必要ですが、{found}がありました"
        )
        self.pos = pos
        self.expected = expected
        self.found = found


class EvalError(MiniLangError):
    """実行時のエラー（未定義の変数、0 による除算、壊れた RPN）。"""


# ----------------------------------------------------------------------
# 字句解析
# ----------------------------------------------------------------------

# トークンの種類。記号はその文字自身を種類の名前にする。
NUM, NAME, SEP, EOF = "NUM", "NAME", "SEP", "EOF"
SYMBOLS = "+-*/=()"


@dataclass(frozen=True)
class Token:
    """トークン。kind は NUM・NAME・SEP・EOF か、記号そのもの。"""

    kind: str
    text: str
    pos: Pos

    def describe(self) -> str:
        """エラーメッセージで使う、人が読むための名前。"""
        if self.kind == EOF:
            return "入力の終わり"
        if self.text == "\n":
            return "改行"
        return repr(self.text)


def _is_digit(ch: str) -> bool:
    # str.isdigit は "٣" のような ASCII 外の数字も真にするので絞る
    return ch.isascii() and ch.isdigit()


def _is_name_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def tokenize(src: str) -> list[Token]:
    """ソースをトークンの列にする。最後は必ず EOF のトークン。

    改行と ``;`` はどちらも種類 SEP のトークンになる。
    改行以外の空白は読み飛ばす。
    """
    tokens: list[Token] = []
    i, line, line_start = 0, 1, 0
    while True:
        pos = Pos(i, line, i - line_start + 1)
        if i == len(src):
            tokens.append(Token(EOF, "", pos))
            return tokens
        ch = src[i]
        if ch in ";\n":
            tokens.append(Token(SEP, ch, pos))
            i += 1
            if ch == "\n":
                line, line_start = line + 1, i
        elif ch in " \t\r":
            i += 1
        elif ch in SYMBOLS:
            tokens.append(Token(ch, ch, pos))
            i += 1
        elif _is_digit(ch):
            j = i
            while j < len(src) and _is_digit(src[j]):
                j += 1
            tokens.append(Token(NUM, src[i:j], pos))
            i = j
        elif _is_name_char(ch) and not _is_digit(ch):
            j = i
            while j < len(src) and _is_name_char(src[j]):
                j += 1
            tokens.append(Token(NAME, src[i:j], pos))
            i = j
        else:
            raise LexError(pos, ch)


# ----------------------------------------------------------------------
# 抽象構文木（AST）
# ----------------------------------------------------------------------
# frozen な dataclass にしておくと、== で木の形どうしを比べられる。


@dataclass(frozen=True)
class Num:
    """整数のリテラル（0 以上）。"""

    value: int

    def __post_init__(self) -> None:
        # 字句解析器は "-" を演算子として読むので、負のリテラルを
        # 許すと parse(unparse(e)) == e が成り立たなくなる。
        if self.value < 0:
            raise ValueError("負の数は Neg(Num(...)) で表します")


@dataclass(frozen=True)
class Var:
    """変数の参照。"""

    name: str


@dataclass(frozen=True)
class Neg:
    """単項マイナス。"""

    operand: Expr


@dataclass(frozen=True)
class BinOp:
    """二項演算。op は "+" "-" "*" "/" のどれか。"""

    op: str
    left: Expr
    right: Expr


Expr: TypeAlias = Num | Var | Neg | BinOp


@dataclass(frozen=True)
class Assign:
    """代入文 ``name = value``。"""

    name: str
    value: Expr


# 式はそのまま式文として文になる（包む型は作らない）。
Stmt: TypeAlias = Assign | Expr


@dataclass(frozen=True)
class Program:
    """文の並び。"""

    statements: tuple[Stmt, ...]


# ----------------------------------------------------------------------
# 再帰下降パーサ: 文法の規則 1 つがメソッド 1 つに対応する
# ----------------------------------------------------------------------


class _Parser:
    def __init__(self, src: str) -> None:
        self.tokens = tokenize(src)
        self.i = 0

    def peek(self, ahead: int = 0) -> Token:
        # EOF より先を見ようとしたら EOF を返し続ける
        j = min(self.i + ahead, len(self.tokens) - 1)
        return self.tokens[j]

    def advance(self) -> Token:
        tok = self.peek()
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def expect(self, kind: str, expected: str) -> Token:
        tok = self.peek()
        if tok.kind != kind:
            raise ParseError(tok.pos, expected, tok.describe())
        return self.advance()

    def program(self) -> Program:
        self.skip_separators()
        statements = [self.statement()]
        while self.peek().kind == SEP:
            self.skip_separators()
            if self.peek().kind == EOF:
                break
            statements.append(self.statement())
        self.expect(EOF, "演算子か文の区切り（';' か改行）")
        return Program(tuple(statements))

    def skip_separators(self) -> None:
        while self.peek().kind == SEP:
            self.advance()

    def statement(self) -> Stmt:
        # 代入か式文かは、2 つ先のトークンが "=" かどうかで決まる（LL(2)）
        if self.peek().kind == NAME and self.peek(1).kind == "=":
            name = self.advance().text
            self.advance()
            return Assign(name, self.expr())
        return self.expr()

    def expr(self) -> Expr:
        # 再帰ではなくループで右へ伸ばし、左に積み上げる。
        # こうすると a - b - c が (a - b) - c になる（左結合）。
        left = self.term()
        while self.peek().kind in ("+", "-"):
            op = self.advance().text
            left = BinOp(op, left, self.term())
        return left

    def term(self) -> Expr:
        left = self.unary()
        while self.peek().kind in ("*", "/"):
            op = self.advance().text
            left = BinOp(op, left, self.unary())
        return left

    def unary(self) -> Expr:
        if self.peek().kind == "-":
            self.advance()
            return Neg(self.unary())
        return self.atom()

    def atom(self) -> Expr:
        tok = self.peek()
        if tok.kind == NUM:
            self.advance()
            return Num(int(tok.text))
        if tok.kind == NAME:
            self.advance()
            return Var(tok.text)
        if tok.kind == "(":
            self.advance()
            inner = self.expr()
            self.expect(")", "')'")
            return inner
        raise ParseError(tok.pos, "式", tok.describe())


def parse(src: str) -> Program:
    """ソースをプログラム（文の並び）の AST にする。"""
    return _Parser(src).program()


def parse_expr(src: str) -> Expr:
    """ソースを 1 つの式の AST にする。代入や複数の文は受け付けない。"""
    parser = _Parser(src)
    expr = parser.expr()
    parser.expect(EOF, "演算子")
    return expr


# ----------------------------------------------------------------------
# 評価器（木を歩くインタプリタ）
# ----------------------------------------------------------------------


def apply_binop(op: str, a: int, b: int) -> int:
    """二項演算を 1 つ実行する。評価器とスタックマシンが共有する。"""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            raise EvalError("0 で割りました")
        return a // b  # 床関数による除算（モジュールの docstring 参照）
    raise ValueError(f"未知の演算子 {op!r}")


def _lookup(env: Mapping[str, int], name: str) -> int:
    if name not in env:
        raise EvalError(f"変数 {name!r} は定義されていません")
    return env[name]


def evaluate(
    node: Program | Stmt, env: Mapping[str, int] | None = None
) -> int:
    """プログラムか式を評価して値を返す。

    env は変数の初期値。渡した辞書は書き換えない（代入は内側の
    コピーに対して行う）。
    """
    scope = dict(env or {})
    if isinstance(node, Program):
        value = 0  # 文が 1 つ以上あるので必ず上書きされる
        for stmt in node.statements:
            value = _exec(stmt, scope)
        return value
    return _exec(node, scope)


def _exec(stmt: Stmt, scope: dict[str, int]) -> int:
    if isinstance(stmt, Assign):
        scope[stmt.name] = _eval(stmt.value, scope)
        return scope[stmt.name]
    return _eval(stmt, scope)


def _eval(expr: Expr, scope: Mapping[str, int]) -> int:
    match expr:
        case Num(value):
            return value
        case Var(name):
            return _lookup(scope, name)
        case Neg(operand):
            return -_eval(operand, scope)
        case BinOp(op, left, right):
            return apply_binop(op, _eval(left, scope), _eval(right, scope))
    raise TypeError(f"式ではありません: {expr!r}")


# ----------------------------------------------------------------------
# スタックマシン向けのコード生成（逆ポーランド記法）とスタックマシン
# ----------------------------------------------------------------------

# 単項マイナスの命令。二項の "-" と区別するために別の記号にする。
NEG = "~"


def to_rpn(expr: Expr) -> list[str]:
    """式を逆ポーランド記法の命令列にする（木の帰りがけ順）。

    数と変数は「値を積む」、演算子は「2 つ下ろして結果を積む」、
    NEG は「1 つ下ろして符号を変えて積む」命令になる。
    """
    match expr:
        case Num(value):
            return [str(value)]
        case Var(name):
            return [name]
        case Neg(operand):
            return [*to_rpn(operand), NEG]
        case BinOp(op, left, right):
            return [*to_rpn(left), *to_rpn(right), op]
    raise TypeError(f"式ではありません: {expr!r}")


def run_rpn(
    tokens: Sequence[str], env: Mapping[str, int] | None = None
) -> int:
    """逆ポーランド記法の命令列をスタックマシンで実行する。"""
    env = env or {}
    stack: list[int] = []
    for tok in tokens:
        if tok == NEG:
            _need(stack, 1, tok)
            stack.append(-stack.pop())
        elif tok in ("+", "-", "*", "/"):
            _need(stack, 2, tok)
            b, a = stack.pop(), stack.pop()  # 後に積んだ方が右辺
            stack.append(apply_binop(tok, a, b))
        elif tok and all(_is_digit(c) for c in tok):
            stack.append(int(tok))
        else:
            stack.append(_lookup(env, tok))
    if len(stack) != 1:
        raise EvalError(f"終了時のスタックの深さが {len(stack)} です")
    return stack[0]


def _need(stack: list[int], n: int, tok: str) -> None:
    if len(stack) < n:
        raise EvalError(f"{tok!r} の実行に値が {n} 個必要です")


# ----------------------------------------------------------------------
# 整形出力: 必要最小限の括弧で式を文字列に戻す
# ----------------------------------------------------------------------

# 結び付きの強さ。大きいほど強い。
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_UNARY_PRECEDENCE = 3
_ATOM_PRECEDENCE = 4


def _precedence(expr: Expr) -> int:
    if isinstance(expr, BinOp):
        return _PRECEDENCE[expr.op]
    if isinstance(expr, Neg):
        return _UNARY_PRECEDENCE
    return _ATOM_PRECEDENCE


def unparse(node: Program | Stmt, *, compact: bool = False) -> str:
    """AST をソースに戻す。parse(unparse(e)) は e と同じ木になる。

    compact=True なら空白を入れない（``1+2*(3-x)``）。系列の長さを
    縮めたいときに使う。プログラムの文は ``"; "`` で区切って 1 行にする。
    """
    if isinstance(node, Program):
        sep = ";" if compact else "; "
        return sep.join(
            unparse(s, compact=compact) for s in node.statements
        )
    if isinstance(node, Assign):
        eq = "=" if compact else " = "
        return f"{node.name}{eq}{unparse(node.value, compact=compact)}"
    return _unparse_expr(node, "" if compact else " ")


def _unparse_expr(expr: Expr, space: str) -> str:
    match expr:
        case Num(value):
            return str(value)
        case Var(name):
            return name
        case Neg(operand):
            inner = _unparse_expr(operand, space)
            if _precedence(operand) < _UNARY_PRECEDENCE:
                inner = f"({inner})"
            return f"-{inner}"
        case BinOp(op, left, right):
            p = _PRECEDENCE[op]
            lhs = _unparse_expr(left, space)
            rhs = _unparse_expr(right, space)
            # 左結合なので、左辺は同じ強さまで括弧なしでよいが、
            # 右辺は同じ強さでも括弧が要る（a - (b - c)）。
            # a + (b + c) も、木の形を保つために括弧を残す。
            if _precedence(left) < p:
                lhs = f"({lhs})"
            if _precedence(right) <= p:
                rhs = f"({rhs})"
            return f"{lhs}{space}{op}{space}{rhs}"
    raise TypeError(f"式ではありません: {expr!r}")


# ----------------------------------------------------------------------
# 確率文法による乱数プログラムの生成
# ----------------------------------------------------------------------

OPERATORS = ("+", "-", "*", "/")


def depth(expr: Expr) -> int:
    """式の木の高さ。数と変数は 0、演算子 1 つごとに 1 増える。"""
    match expr:
        case Num() | Var():
            return 0
        case Neg(operand):
            return 1 + depth(operand)
        case BinOp(_, left, right):
            return 1 + max(depth(left), depth(right))
    raise TypeError(f"式ではありません: {expr!r}")


def random_expr(
    rng: random.Random,
    max_depth: int,
    *,
    min_depth: int = 0,
    names: Sequence[str] = (),
    num_range: tuple[int, int] = (0, 9),
    leaf_prob: float = 0.3,
    var_prob: float = 0.3,
    neg_prob: float = 0.1,
) -> Expr:
    """確率文法で式を 1 つ作る。深さは min_depth 以上 max_depth 以下。

    各節点で、まず確率 leaf_prob で葉（数か変数）を選ぶ。深さの
    残りが 0 なら必ず葉、min_depth に届いていなければ葉は選ばない。
    葉でなければ確率 neg_prob で単項マイナス、残りで二項演算
    （4 つの演算子は等確率）になる。葉は確率 var_prob で names から
    選んだ変数（names が空なら常に数）、残りで num_range の範囲
    （両端を含む）の整数になる。
    """
    if not 0 <= min_depth <= max_depth:
        raise ValueError("0 <= min_depth <= max_depth にしてください")
    if num_range[0] < 0:
        raise ValueError("数のリテラルは 0 以上です")

    def leaf() -> Expr:
        if names and rng.random() < var_prob:
            return Var(rng.choice(names))
        return Num(rng.randint(*num_range))

    def node(budget: int, need: int) -> Expr:
        # budget: まだ下ろせる深さ、need: 最低限下ろす深さ
        if budget == 0 or (need == 0 and rng.random() < leaf_prob):
            return leaf()
        rest = max(need - 1, 0)
        if rng.random() < neg_prob:
            return Neg(node(budget - 1, rest))
        op = rng.choice(OPERATORS)
        # 深さの下限は、左右どちらか一方の部分木が担えば足りる
        if rng.random() < 0.5:
            return BinOp(op, node(budget - 1, rest), node(budget - 1, 0))
        return BinOp(op, node(budget - 1, 0), node(budget - 1, rest))

    return node(max_depth, min_depth)


def random_program(
    rng: random.Random,
    *,
    max_statements: int = 3,
    max_depth: int = 2,
    names: Sequence[str] = ("x", "y", "z"),
    num_range: tuple[int, int] = (0, 9),
    leaf_prob: float = 0.3,
    var_prob: float = 0.5,
    neg_prob: float = 0.1,
) -> Program:
    """確率文法でプログラムを 1 つ作る。

    文の数は 1 以上 max_statements 以下で、最後の文は式文、それより
    前は names から選んだ変数への代入文になる。式が参照するのは
    それまでに代入された変数だけなので、未定義の変数で失敗する
    ことはない（0 による除算は起こりうる）。
    """
    if max_statements < 1:
        raise ValueError("max_statements は 1 以上にしてください")
    n = rng.randint(1, max_statements)
    defined: list[str] = []
    statements: list[Stmt] = []
    for i in range(n):
        expr = random_expr(
            rng,
            max_depth,
            names=defined,
            num_range=num_range,
            leaf_prob=leaf_prob,
            var_prob=var_prob,
            neg_prob=neg_prob,
        )
        if i == n - 1:
            statements.append(expr)
        else:
            name = rng.choice(names)
            statements.append(Assign(name, expr))
            if name not in defined:
                defined.append(name)
    return Program(tuple(statements))
