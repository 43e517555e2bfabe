"""minilang のテスト。

正しさは自分で書いた期待値ではなく、Python 自身（``ast`` と ``eval``）
との一致で示す。minilang の式は、``/`` を ``//`` に読み替えれば
そのまま Python の式でもあり、優先順位と結合性も同じだからである。
"""

from __future__ import annotations

import ast
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from easy_transformer.minilang import (
    NEG,
    Assign,
    BinOp,
    EvalError,
    Expr,
    LexError,
    Neg,
    Num,
    ParseError,
    Program,
    Stmt,
    Var,
    depth,
    evaluate,
    parse,
    parse_expr,
    random_expr,
    random_program,
    run_rpn,
    to_rpn,
    tokenize,
    unparse,
)

NAMES = ["x", "y", "z", "ab", "n1"]
ENV = {"x": 7, "y": -3, "z": 0, "ab": 12, "n1": -25}

# --- hypothesis で式を作る（random_expr とは独立に） ---------------

leaves = st.one_of(
    st.builds(Num, st.integers(0, 1000)),
    st.builds(Var, st.sampled_from(NAMES)),
)


def _extend(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    return st.one_of(
        st.builds(Neg, children),
        st.builds(BinOp, st.sampled_from("+-*/"), children, children),
    )


exprs = st.recursive(leaves, _extend, max_leaves=20)
assigns = st.builds(Assign, st.sampled_from(NAMES), exprs)
programs = st.lists(st.one_of(assigns, exprs), min_size=1, max_size=4).map(
    lambda stmts: Program(tuple(stmts))
)


# --- 参照実装: Python 自身 ------------------------------------------


def to_python(src: str) -> str:
    """minilang のソースを Python のソースに読み替える。"""
    return src.replace("/", "//")


def python_eval(src: str, env: dict[str, int]) -> int:
    """Python の eval で式を評価する。0 除算は EvalError に揃える。"""
    try:
        value = eval(to_python(src), {"__builtins__": {}}, dict(env))
    except ZeroDivisionError as e:
        raise EvalError(str(e)) from e
    assert isinstance(value, int)
    return value


def python_run(src: str, env: dict[str, int]) -> int:
    """Python で文の並びを実行し、最後の文の値を返す。"""
    module = ast.parse(to_python(src))
    scope = {"__builtins__": {}, **env}
    *body, last = module.body
    try:
        exec(compile(ast.Module(body, []), "<minilang>", "exec"), scope)
        if isinstance(last, ast.Expr):
            tree = ast.Expression(last.value)
            value = eval(compile(tree, "<minilang>", "eval"), scope)
        else:
            assert isinstance(last, ast.Assign)
            code = compile(ast.Module([last], []), "<minilang>", "exec")
            exec(code, scope)
            target = last.targets[0]
            assert isinstance(target, ast.Name)
            value = scope[target.id]
    except ZeroDivisionError as e:
        raise EvalError(str(e)) from e
    assert isinstance(value, int)
    return value


def from_python_ast(node: ast.expr) -> Expr:
    """Python のパーサが作った木を minilang の木に写す。"""
    ops = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "/"}
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int)
        return Num(node.value)
    if isinstance(node, ast.Name):
        return Var(node.id)
    if isinstance(node, ast.UnaryOp):
        assert isinstance(node.op, ast.USub)
        return Neg(from_python_ast(node.operand))
    assert isinstance(node, ast.BinOp)
    return BinOp(
        ops[type(node.op)],
        from_python_ast(node.left),
        from_python_ast(node.right),
    )


def python_parse(src: str) -> Expr:
    tree = ast.parse(to_python(src), mode="eval")
    return from_python_ast(tree.body)


def fully_parenthesized(expr: Expr) -> str:
    """すべての演算を括弧で包む、明らかに正しい（が冗長な）整形。"""
    if isinstance(expr, Num):
        return str(expr.value)
    if isinstance(expr, Var):
        return expr.name
    if isinstance(expr, Neg):
        return f"(-{fully_parenthesized(expr.operand)})"
    left = fully_parenthesized(expr.left)
    right = fully_parenthesized(expr.right)
    return f"({left} {expr.op} {right})"


def outcome(f: Callable[..., int], *args: object) -> int | str:
    """値か、EvalError なら "error" を返す（両者の比較用）。"""
    try:
        return f(*args)
    except EvalError:
        return "error"


# --- (1) 評価器 == Python の eval --------------------------------------


@settings(deadline=None)
@given(exprs)
def test_evaluate_matches_python_eval(e: Expr) -> None:
    src = unparse(e)
    assert outcome(evaluate, e, ENV) == outcome(python_eval, src, ENV)


@settings(deadline=None)
@given(programs)
def test_program_matches_python_exec(p: Program) -> None:
    src = unparse(p)
    assert outcome(evaluate, parse(src), ENV) == outcome(
        python_run, src, ENV
    )


def test_floor_division_follows_python() -> None:
    for a in range(-9, 10):
        for b in [-4, -3, -1, 1, 2, 5]:
            src = f"{a} / {b}"
            assert evaluate(parse(src)) == a // b


# --- パーサ == Python のパーサ ------------------------------------------


@settings(deadline=None)
@given(exprs, st.booleans())
def test_parse_matches_python_parser(e: Expr, compact: bool) -> None:
    src = unparse(e, compact=compact)
    assert parse_expr(src) == python_parse(src)


@settings(deadline=None)
@given(exprs)
def test_parse_fully_parenthesized(e: Expr) -> None:
    assert parse_expr(fully_parenthesized(e)) == e


# --- (2) RPN をスタックマシンで実行 == 評価器 -------------------------


@settings(deadline=None)
@given(exprs)
def test_rpn_matches_evaluate(e: Expr) -> None:
    assert outcome(run_rpn, to_rpn(e), ENV) == outcome(evaluate, e, ENV)


def test_rpn_shape() -> None:
    e = parse_expr("-(1 + 2) * x - 3")
    assert to_rpn(e) == ["1", "2", "+", NEG, "x", "*", "3", "-"]


@pytest.mark.parametrize(
    "tokens", [[], ["1", "+"], ["1", "2"], [NEG], ["q"], ["1", "0", "/"]]
)
def test_run_rpn_errors(tokens: list[str]) -> None:
    with pytest.raises(EvalError):
        run_rpn(tokens, {"x": 1})


# --- (3) parse(unparse(e)) == e ---------------------------------------


@settings(deadline=None)
@given(exprs, st.booleans())
def test_unparse_roundtrip(e: Expr, compact: bool) -> None:
    assert parse_expr(unparse(e, compact=compact)) == e


@settings(deadline=None)
@given(programs, st.booleans())
def test_program_roundtrip(p: Program, compact: bool) -> None:
    assert parse(unparse(p, compact=compact)) == p


@settings(deadline=None)
@given(exprs)
def test_unparse_uses_minimal_parentheses(e: Expr) -> None:
    # どの括弧を 1 組外しても、別の木になる
    src = unparse(e)
    opens = [i for i, c in enumerate(src) if c == "("]
    for i in opens:
        j = _matching(src, i)
        shorter = src[:i] + src[i + 1 : j] + src[j + 1 :]
        assert parse_expr(shorter) != e


def _matching(src: str, i: int) -> int:
    level = 0
    for j in range(i, len(src)):
        level += {"(": 1, ")": -1}.get(src[j], 0)
        if level == 0:
            return j
    raise AssertionError("括弧が閉じていない")


def test_unparse_examples() -> None:
    assert unparse(parse_expr("((1)) - (2 - 3)")) == "1 - (2 - 3)"
    assert unparse(parse_expr("(1 - 2) - 3")) == "1 - 2 - 3"
    assert unparse(parse_expr("-(x * 2)"), compact=True) == "-(x*2)"
    assert unparse(parse("a = 1\n;; a + 1;")) == "a = 1; a + 1"


def test_negative_literal_is_rejected() -> None:
    with pytest.raises(ValueError):
        Num(-1)


# --- (4) 左結合と優先順位 ---------------------------------------------


def test_left_associative() -> None:
    assert evaluate(parse("8 - 4 - 2")) == 2
    assert evaluate(parse("16 / 4 / 2")) == 2
    assert parse_expr("8 - 4 - 2") == BinOp(
        "-", BinOp("-", Num(8), Num(4)), Num(2)
    )
    assert parse_expr("16 / 4 / 2") == BinOp(
        "/", BinOp("/", Num(16), Num(4)), Num(2)
    )


def test_precedence() -> None:
    assert parse_expr("1 + 2 * 3") == BinOp(
        "+", Num(1), BinOp("*", Num(2), Num(3))
    )
    assert parse_expr("-2 * 3") == BinOp("*", Neg(Num(2)), Num(3))
    assert evaluate(parse("(1 + 2) * 3")) == 9


# --- 文と代入 ----------------------------------------------------------


def test_statements_and_separators() -> None:
    src = "\n x = 3 ; y = x * 2\n\n x + y ;\n"
    p = parse(src)
    assert p == Program(
        (
            Assign("x", Num(3)),
            Assign("y", BinOp("*", Var("x"), Num(2))),
            BinOp("+", Var("x"), Var("y")),
        )
    )
    assert evaluate(p) == 9
    assert evaluate(parse("x = 5")) == 5


def test_evaluate_does_not_mutate_env() -> None:
    env = {"x": 1}
    assert evaluate(parse("x = x + 1; x"), env) == 2
    assert env == {"x": 1}


@pytest.mark.parametrize("src", ["y + 1", "1 / 0", "x = 0; 5 / x"])
def test_eval_errors(src: str) -> None:
    with pytest.raises(EvalError):
        evaluate(parse(src))


# --- (5) エラーの位置情報 ---------------------------------------------


@pytest.mark.parametrize(
    ("src", "line", "col", "char"),
    [
        ("1 + $", 1, 5, "$"),
        ("x = 1\ny = 2 @ 3", 2, 7, "@"),
        ("\n\n  #", 3, 3, "#"),
        ("x２", 1, 2, "２"),
    ],
)
def test_lex_error_position(
    src: str, line: int, col: int, char: str
) -> None:
    with pytest.raises(LexError) as info:
        tokenize(src)
    err = info.value
    assert (err.pos.line, err.pos.col, err.char) == (line, col, char)
    assert src[err.pos.offset] == char
    assert f"{line}:{col}" in str(err)


@pytest.mark.parametrize(
    ("src", "line", "col", "expected", "found"),
    [
        ("1 +", 1, 4, "式", "入力の終わり"),
        ("(1 + 2", 1, 7, "')'", "入力の終わり"),
        ("1 2", 1, 3, "文の区切り", "'2'"),
        ("x = 1\ny = * 2", 2, 5, "式", "'*'"),
        ("(1 + 2\n)", 1, 7, "')'", "改行"),
        ("", 1, 1, "式", "入力の終わり"),
        ("x = y = 1", 1, 7, "文の区切り", "'='"),
    ],
)
def test_parse_error_position(
    src: str, line: int, col: int, expected: str, found: str
) -> None:
    with pytest.raises(ParseError) as info:
        parse(src)
    err = info.value
    assert (err.pos.line, err.pos.col) == (line, col)
    assert expected in err.expected
    assert err.found == found
    assert f"{line}:{col}" in str(err)


def test_parse_expr_rejects_statements() -> None:
    with pytest.raises(ParseError):
        parse_expr("x = 1")
    with pytest.raises(ParseError):
        parse_expr("1; 2")


def test_tokens_have_positions() -> None:
    toks = tokenize("ab = 12\n-x")
    got = [(t.kind, t.text, t.pos.line, t.pos.col) for t in toks]
    assert got == [
        ("NAME", "ab", 1, 1),
        ("=", "=", 1, 4),
        ("NUM", "12", 1, 6),
        ("SEP", "\n", 1, 8),
        ("-", "-", 2, 1),
        ("NAME", "x", 2, 2),
        ("EOF", "", 2, 3),
    ]


# --- 乱数生成 ----------------------------------------------------------


@settings(deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 5),
    st.integers(0, 5),
)
def test_random_expr_depth_bounds(seed: int, a: int, b: int) -> None:
    lo, hi = min(a, b), max(a, b)
    rng = random.Random(seed)
    e = random_expr(rng, hi, min_depth=lo, names="uv", num_range=(3, 5))
    assert lo <= depth(e) <= hi
    assert depth(parse_expr(unparse(e))) == depth(e)
    src = unparse(e, compact=True)
    assert set(src) <= set("uv345+-*/()")


def test_random_expr_is_deterministic() -> None:
    def sample(seed: int) -> list[Expr]:
        rng = random.Random(seed)
        return [random_expr(rng, 4, names="ab") for _ in range(20)]

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


@settings(deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_random_program_uses_only_defined_names(seed: int) -> None:
    p = random_program(random.Random(seed), max_statements=4)
    assert 1 <= len(p.statements) <= 4
    assert parse(unparse(p)) == p
    defined: set[str] = set()
    for stmt in p.statements:
        expr = stmt.value if isinstance(stmt, Assign) else stmt
        assert _names(expr) <= defined
        if isinstance(stmt, Assign):
            defined.add(stmt.name)
    last: Stmt = p.statements[-1]
    assert not isinstance(last, Assign)
    try:
        evaluate(p)
    except EvalError as e:
        assert "0 で割" in str(e)


def _names(expr: Expr) -> set[str]:
    if isinstance(expr, Var):
        return {expr.name}
    if isinstance(expr, Neg):
        return _names(expr.operand)
    if isinstance(expr, BinOp):
        return _names(expr.left) | _names(expr.right)
    return set()
