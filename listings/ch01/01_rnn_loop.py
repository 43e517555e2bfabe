"""第1章: RNN の逐次処理と注意機構の並列処理を、計算グラフの深さで比べる。

RNN は位置 t の隠れ状態を位置 t-1 の隠れ状態から計算する。
注意機構は、すべての位置の出力を入力から直接計算する。
その違いは、自動微分が記録した計算グラフの「最長の依存の鎖」に表れる。
"""

from __future__ import annotations

import torch
from torch import Tensor

from easy_transformer.attention import (
    causal_mask,
    scaled_dot_product_attention,
)


def rnn_forward(xs: Tensor, w_x: Tensor, w_h: Tensor, b: Tensor) -> Tensor:
    """素朴な RNN。xs (seq, d_in) → 隠れ状態の列 (seq, d_hidden)。"""
    h = torch.zeros(w_h.size(0))
    states = []
    for x in xs:  # 前の h が決まるまで次の h は計算できない
        h = torch.tanh(x @ w_x + h @ w_h + b)
        states.append(h)
    return torch.stack(states)


def attention_forward(
    xs: Tensor, w_q: Tensor, w_k: Tensor, w_v: Tensor
) -> Tensor:
    """因果マスク付きの自己注意。xs (seq, d) → (seq, d)。ループが無い。"""
    q, k, v = xs @ w_q, xs @ w_k, xs @ w_v
    out, _ = scaled_dot_product_attention(q, k, v, causal_mask(len(xs)))
    return out


def graph_depth(t: Tensor) -> int:
    """t を計算した自動微分のグラフで、葉から t までの最長の鎖の長さ。

    グラフは有向非巡回なので、帰りがけ順に「子の深さの最大 + 1」を
    求めればよい（コンパイラの命令スケジューリングで使うクリティカル
    パスの長さと同じ計算）。深い RNN でも再帰の上限にかからないよう、
    明示的なスタックで辿る。
    """
    depth: dict[object, int] = {}
    stack = [t.grad_fn]
    while stack:
        fn = stack[-1]
        if fn is None or fn in depth:
            stack.pop()
            continue
        children = [c for c, _ in fn.next_functions if c is not None]
        todo = [c for c in children if c not in depth]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        depth[fn] = 1 + max((depth[c] for c in children), default=0)
    return depth.get(t.grad_fn, 0)
