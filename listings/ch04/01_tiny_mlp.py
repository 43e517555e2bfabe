"""第4章: nn.Module の最小の例。線形 → ReLU → 線形 の 2 層。"""

from __future__ import annotations

from torch import Tensor, nn


class TinyMLP(nn.Module):
    """入力 (..., d_in) を出力 (..., d_out) に移す 2 層のネットワーク。"""

    def __init__(self, d_in: int, d_hidden: int, d_out: int) -> None:
        super().__init__()  # 忘れると、部品の登録に失敗してエラーになる
        # 属性に代入した nn.Module と nn.Parameter は自動で登録され、
        # parameters() や state_dict() や .to() の対象になる
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(d_hidden, d_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))
