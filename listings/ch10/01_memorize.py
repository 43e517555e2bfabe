"""第10章: FFN の中間層の幅と、覚えられる対応の数。

n 個のランダムなベクトル（キー）に、それぞれランダムなクラスを
割り当てた表を、FeedForward 1 つに覚えさせる。出力の d_model 個の
成分をそのままクラスのロジットとみなし、全件で学習して、学習データを
何割当てられるようになったかを測る。
"""

import torch
import torch.nn.functional as F

from easy_transformer.layers import FeedForward


def memorize(
    d_ff: int,
    activation: str | None = "relu",
    n: int = 2048,
    d_model: int = 16,
    steps: int = 300,
    seed: int = 0,
) -> float:
    """学習後の正解率（0〜1）を返す。activation=None なら活性化なし。"""
    g = torch.Generator().manual_seed(seed)
    keys = torch.randn(n, d_model, generator=g)
    labels = torch.randint(0, d_model, (n,), generator=g)
    torch.manual_seed(seed)
    ffn = FeedForward(d_model, d_ff, activation or "relu")
    if activation is None:
        ffn.activation = torch.nn.Identity()  # 2 つの線形変換が直につながる
    optimizer = torch.optim.Adam(ffn.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = F.cross_entropy(ffn(keys), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = ffn(keys).argmax(dim=-1)
    return (predicted == labels).float().mean().item()
