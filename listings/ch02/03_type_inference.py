"""第2章: 文脈で意味が決まる例。型推論は + の意味を被演算子の型で決める。

Python の式の一部（整数・文字列のリテラル、変数、+ と *）だけを扱う、
ごく小さな型推論器。型は "int" か "str" で、環境が変数の型を与える。
"""

from __future__ import annotations

import ast
from collections.abc import Mapping


class InferenceError(Exception):
    """型が合わない（型推論の失敗）。"""


def infer(src: str, env: Mapping[str, str]) -> str:
    """式 src の型を返す。演算子の意味も決まる（explain を参照）。"""
    return _infer(ast.parse(src, mode="eval").body, env, [])


def explain(src: str, env: Mapping[str, str]) -> list[str]:
    """式の中の演算子が、それぞれ何の演算に決まったかを並べる。"""
    notes: list[str] = []
    _infer(ast.parse(src, mode="eval").body, env, notes)
    return notes


# (演算子, 左の型, 右の型) → (結果の型, 演算の名前)
RULES = {
    ("+", "int", "int"): ("int", "整数の加算"),
    ("+", "str", "str"): ("str", "文字列の連結"),
    ("*", "int", "int"): ("int", "整数の乗算"),
    ("*", "str", "int"): ("str", "文字列の繰り返し"),
    ("*", "int", "str"): ("str", "文字列の繰り返し"),
}
OPS = {ast.Add: "+", ast.Mult: "*"}


def _infer(node: ast.expr, env: Mapping[str, str], notes: list[str]) -> str:
    if isinstance(node, ast.Constant) and type(node.value) in (int, str):
        return type(node.value).__name__
    if isinstance(node, ast.Name):
        return env[node.id]  # 記号表を引く
    if isinstance(node, ast.BinOp) and type(node.op) in OPS:
        # 子の型が決まってから親の意味が決まる（下から上へ）
        left = _infer(node.left, env, notes)
        right = _infer(node.right, env, notes)
        op = OPS[type(node.op)]
        if (op, left, right) not in RULES:
            raise InferenceError(f"{left} {op} {right} は未定義です")
        result, meaning = RULES[op, left, right]
        notes.append(f"{op}: {meaning}")
        return result
    raise InferenceError(f"扱えない式です: {ast.dump(node)}")
