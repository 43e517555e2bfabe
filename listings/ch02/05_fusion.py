"""第2章: 演算の融合。コンパイラの定数畳み込みと torch.compile。

- fuse_linears: 2 つの線形層を、同じ関数を計算する 1 つの線形層に畳む。
- captured_ops: torch.compile のフロントエンドが捕まえた計算グラフを見る。
- main: torch.compile（Inductor）が要素ごとの演算を融合したときの速さと、
  コンパイルにかかる時間を測る。
  CPU では最初のコンパイルに数十秒かかるので、本文のテストでは実行しない。
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def fuse_linears(first: nn.Linear, second: nn.Linear) -> nn.Linear:
    """second(first(x)) と同じ関数を計算する 1 つの Linear を返す。

    nn.Linear の weight は (出力, 入力) の形で、y = x weightᵀ + bias。
    second(first(x)) = (x W1ᵀ + b1) W2ᵀ + b2 = x (W2 W1)ᵀ + (b1 W2ᵀ + b2)
    """
    fused = nn.Linear(first.in_features, second.out_features)
    with torch.no_grad():
        fused.weight.copy_(second.weight @ first.weight)
        fused.bias.copy_(first.bias @ second.weight.T + second.bias)
    return fused


def captured_ops(fn: Callable[..., Any], *args: Tensor) -> list[str]:
    """torch.compile が fn から捕まえた FX グラフの、演算の名前の列。

    バックエンドにはコード生成をさせず、受け取ったグラフを記録して
    そのまま実行させる。だからコンパイルの待ち時間がほとんど無い。
    """
    graphs: list[torch.fx.GraphModule] = []

    def record(gm: torch.fx.GraphModule, example_inputs: Any) -> Any:
        graphs.append(gm)
        return gm.forward

    torch.compile(fn, backend=record)(*args)
    return [
        getattr(node.target, "__name__", str(node.target))
        for gm in graphs
        for node in gm.graph.nodes
        if node.op == "call_function"
    ]


def mlp(
    x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor
) -> Tensor:
    """Transformer の FFN と同じ形: 線形 → GELU → 線形、残差を足す。"""
    return x + F.gelu(x @ w1 + b1) @ w2 + b2


def gelu_by_hand(x: Tensor) -> Tensor:
    """GELU の tanh 近似を、要素ごとの演算を並べて書いたもの。

    eager では演算ごとにテンソル全体を読み書きする（中間のテンソルが
    8 つできる）。融合すれば、各要素を 1 回読んで 1 回書くだけになる。
    """
    inner = 0.7978845608 * (x + 0.044715 * x * x * x)
    return 0.5 * x * (1.0 + torch.tanh(inner))


def _best_time(fn: Callable[[], Any], repeat: int = 20) -> float:
    """fn の 1 回の実行時間の最小値（他の処理の割り込みの影響を減らす）。"""
    fn()  # 1 回目は準備の時間を含むので捨てる
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Inductor でコンパイルし、時間を測る（CPU では数十秒かかる）。

    コンパイルの結果はディスクにキャッシュされるので、2 回目以降の
    実行ではコンパイルの時間が短く見える。最初の時間を測るときは、
    環境変数 TORCHINDUCTOR_CACHE_DIR に空のフォルダを指定する。
    """
    torch.manual_seed(0)
    x = torch.randn(4_000_000)
    with torch.no_grad():
        compiled = torch.compile(gelu_by_hand)
        start = time.perf_counter()
        compiled(x)
        first = time.perf_counter() - start
        same = torch.allclose(compiled(x), gelu_by_hand(x), atol=1e-6)
        eager = _best_time(lambda: gelu_by_hand(x))
        fast = _best_time(lambda: compiled(x))
    print(f"最初の呼び出し（コンパイルを含む）: {first:.1f} 秒")
    print(f"結果が一致: {same}")
    print(f"1 回あたり: eager {eager * 1e3:.1f} ms", end=", ")
    print(f"融合 {fast * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
