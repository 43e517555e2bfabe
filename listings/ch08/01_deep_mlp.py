"""第8章: 深いネットワークの層ごとの勾配の大きさを、残差接続の有無で比べる。

各層は全結合と tanh だけの単純なもの。同じ初期値から、残差接続
（x + 層(x)）の有無だけを変えて勾配のノルムを測る。
"""

import torch
from torch import Tensor, nn

from easy_transformer.debug import GradNormMonitor


class TanhLayer(nn.Module):
    """全結合のあとに tanh を掛ける 1 層。"""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.fc(x))


class DeepMLP(nn.Module):
    """TanhLayer を depth 層重ね、最後に 1 つの数を出す。"""

    def __init__(self, depth: int, width: int, residual: bool) -> None:
        super().__init__()
        self.residual = residual
        self.layers = nn.ModuleList(TanhLayer(width) for _ in range(depth))
        self.head = nn.Linear(width, 1)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            # 残差接続: 層は入力を置き換えず、入力への「差分」を足す
            x = x + layer(x) if self.residual else layer(x)
        out: Tensor = self.head(x)
        return out


def layer_grad_norms(
    depth: int, residual: bool, width: int = 32, seed: int = 0
) -> list[float]:
    """ランダムな回帰の問題で 1 回 backward し、層ごとの勾配ノルムを返す。

    返り値の i 番目は layers.i（入力に近い順）のパラメータの勾配ノルム。
    """
    torch.manual_seed(seed)
    model = DeepMLP(depth, width, residual)
    x, y = torch.randn(64, width), torch.randn(64, 1)
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    monitor = GradNormMonitor(model)
    monitor.record()
    # depth=2 で「layers.0」「layers.1」… の単位にまとめる
    norms = monitor.layer_norms(depth=2)
    return [norms[f"layers.{i}"][0] for i in range(depth)]
