"""第4章: 最小の学習ループと、それで解く 2 つの小さな課題。

- line_data: 直線 y = 3x + 2 に雑音を足したデータ（回帰）
- bracket_data: 括弧の列が釣り合っているかどうか（分類）
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from torch import Tensor, nn


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    xs: Tensor,
    ys: Tensor,
    steps: int,
) -> list[float]:
    """xs 全体を 1 つのバッチにして steps 回更新し、損失の推移を返す。"""
    model.train()  # 学習時の振る舞い（ドロップアウトなど）にする
    history = []
    for _ in range(steps):
        pred = model(xs)  # 1. 順伝播
        loss = loss_fn(pred, ys)  # 2. 損失を計算する
        optimizer.zero_grad()  # 3. 前回の勾配を消す（消さないと足される）
        loss.backward()  # 4. 逆伝播で勾配を求める
        optimizer.step()  # 5. 勾配を使ってパラメータを更新する
        history.append(loss.item())
    return history


def line_data(n: int, seed: int) -> tuple[Tensor, Tensor]:
    """y = 3x + 2 + 雑音（標準偏差 0.1）。形はどちらも (n, 1)。"""
    g = torch.Generator().manual_seed(seed)
    xs = torch.rand(n, 1, generator=g) * 2 - 1
    ys = 3 * xs + 2 + 0.1 * torch.randn(n, 1, generator=g)
    return xs, ys


def is_balanced(s: str) -> bool:
    """括弧の列が釣り合っているか（深さを数えるだけで判定できる）。"""
    depth = 0
    for c in s:
        depth += 1 if c == "(" else -1
        if depth < 0:
            return False
    return depth == 0


def bracket_data(length: int) -> tuple[list[str], Tensor, Tensor]:
    """開き括弧と閉じ括弧を同じ数だけ含む、長さ length の列をすべて作る。

    返り値は（列、入力 (n, length)、正解 (n,)）。入力は ( を +1、) を -1
    にした数の並び、正解は釣り合っていれば 1、いなければ 0。
    """
    strings = [
        "".join(p)
        for p in itertools.product("()", repeat=length)
        if p.count("(") == length // 2
    ]
    xs = torch.tensor(
        [[1.0 if c == "(" else -1.0 for c in s] for s in strings]
    )
    ys = torch.tensor([int(is_balanced(s)) for s in strings])
    return strings, xs, ys
