"""第16章 (2/2): 汎化の失敗を調べる道具と、途中の計算を書かせる出力形式。

>>> import importlib
>>> f = importlib.import_module("listings.ch16.02_failure")
>>> f.paren_depth("x*((y+3)-z)")
2
>>> f.first_error("x y 3 + z - *", "x y 3 + * z -")
(4, 'op>val')
>>> f.first_error("x 2 -", "x 2 - 3 *")
(3, 'val>end')
>>> f.with_stack_heights("x 2 - 3 *")
'x:1 2:2 -:1 3:2 *:1'
>>> f.strip_stack_heights("x:1 2:2 -:1 3:2 *:1")
'x 2 - 3 *'
>>> f.well_formed("x 2 - 3 *"), f.well_formed("x 2 - *")
(True, False)
"""

from easy_transformer.minilang import (
    NEG,
    OPERATORS,
    MiniLangError,
    run_rpn,
)

# 形の検査で変数に入れておく値
_ENV = {"x": 1, "y": 1, "z": 1}


def _kind(tok: str | None) -> str:
    """命令の種類: 演算子（op）、値を積む（val）、出力の終わり（end）。"""
    if tok is None:
        return "end"
    return "op" if tok in OPERATORS or tok == NEG else "val"


def paren_depth(src: str) -> int:
    """入力の式の、括弧の入れ子の最大の深さ。"""
    d = best = 0
    for ch in src:
        if ch == "(":
            d += 1
            best = max(best, d)
        elif ch == ")":
            d -= 1
    return best


def first_error(prediction: str, target: str) -> tuple[int, str]:
    """命令の列として最初に食い違う位置と、間違いの種類。

    種類は「正解の命令の種類>予測の命令の種類」。たとえば
    ``"op>val"`` は、演算子を出すべき所で値を積む命令を出した
    （部分式を閉じ忘れた）こと、``"val>end"`` は、まだ続くのに
    出力を終えたことを表す。一致していれば ``(-1, "")``。
    """
    p, t = prediction.split(), target.split()
    for i in range(max(len(p), len(t))):
        a = p[i] if i < len(p) else None
        b = t[i] if i < len(t) else None
        if a != b:
            return i, f"{_kind(b)}>{_kind(a)}"
    return -1, ""


def well_formed(rpn: str) -> bool:
    """スタックマシンで最後まで実行でき、値が 1 つだけ残るか。

    変数はどれも 1 として実行する。途中で 0 除算が起きたもの
    （``x y - /`` など、ごくまれ）も、形が正しくないと数える。
    """
    toks = rpn.split()
    if not toks:
        return False
    try:
        run_rpn(toks, _ENV)
    except MiniLangError:
        return False
    return True


def with_stack_heights(rpn: str) -> str:
    """各命令の後ろに、実行した後のスタックの高さを ``:`` で付ける。"""
    height = 0
    out = []
    for tok in rpn.split():
        if tok in OPERATORS:
            height -= 1  # 2 つ下ろして 1 つ積む
        elif tok != NEG:
            height += 1  # 値を 1 つ積む（NEG は高さを変えない）
        out.append(f"{tok}:{height}")
    return " ".join(out)


def strip_stack_heights(text: str) -> str:
    """with_stack_heights の注記を取り除く（注記が壊れていても）。"""
    return " ".join(tok.split(":")[0] for tok in text.split())
