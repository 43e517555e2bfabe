"""第2章: 勾配チェックポイント。逆伝播用に取っておくテンソルを減らし、
代わりに順伝播をやり直す（メモリと計算の交換）。"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


class Block(nn.Module):
    """線形 → GELU → 線形 に残差を足すブロック。呼ばれた回数を数える。"""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        return x + self.fc2(F.gelu(self.fc1(x)))


class Stack(nn.Module):
    """Block を n 個重ねたもの。use_checkpoint でチェックポイントを使う。"""

    def __init__(self, d: int, n: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(d) for _ in range(n))

    def forward(self, x: Tensor, use_checkpoint: bool = False) -> Tensor:
        for block in self.blocks:
            if use_checkpoint:
                # ブロックの入力だけを取っておき、中間の値は逆伝播の
                # ときにブロックをもう1 度実行して作り直す
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x


def saved_bytes(model: Stack, x: Tensor, use_checkpoint: bool) -> int:
    """順伝播の間に、逆伝播のために取っておかれたテンソルのバイト数。

    nn.Linear は重み（パラメータ）も取っておくが、重みはもともとメモリに
    あるので数えない。転置などの見え方が違っても、同じメモリを指すものは
    data_ptr() が同じになるので、それで見分ける。
    """
    total = 0
    params = {p.data_ptr() for p in model.parameters()}

    def pack(t: Tensor) -> Tensor:
        nonlocal total
        if t.data_ptr() not in params:
            total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = model(x, use_checkpoint)
    y.sum().backward()
    return total


def main() -> None:
    """大きめの設定で、メモリ（取っておくバイト数）と時間を比べる。"""
    import time

    torch.manual_seed(0)
    model = Stack(d=256, n=8)
    x = torch.randn(16, 128, 256, requires_grad=True)
    for use in (False, True):
        saved = saved_bytes(model, x, use)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            model(x, use).sum().backward()
            times.append(time.perf_counter() - start)
        print(
            f"checkpoint={use}: 取っておく {saved / 2**20:.0f} MiB, "
            f"順伝播+逆伝播 {min(times) * 1e3:.0f} ms"
        )


if __name__ == "__main__":
    main()
