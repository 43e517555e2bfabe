"""第19章: 語彙に新しいトークンを足し、埋め込みの表と出力層を広げる。

新しい行は、既存の行の平均で初期化する。出力層が埋め込みの表と重みを
共有しているなら、広げた表をもう 1 度共有させる（片方だけ広げると、
共有が切れて 2 つの別の行列になる）。
"""

from __future__ import annotations

import torch
from torch import nn


def grow_rows(weight: torch.Tensor, n_new: int) -> nn.Parameter:
    """weight（語彙, d）の下に、既存の行の平均を n_new 行足す。"""
    old = weight.detach()
    mean = old.mean(dim=0, keepdim=True).expand(n_new, -1)
    return nn.Parameter(torch.cat([old, mean]))


def grow_vocab(embed: nn.Embedding, head: nn.Linear, n_new: int) -> None:
    """埋め込みの表 embed と出力層 head を、n_new 語ぶん広げる。"""
    tied = head.weight is embed.weight
    embed.weight = grow_rows(embed.weight, n_new)
    embed.num_embeddings += n_new
    if tied:
        head.weight = embed.weight  # 共有をつなぎ直す
    else:
        head.weight = grow_rows(head.weight, n_new)
    if head.bias is not None:
        # 新しい語のバイアスも平均で始める
        bias = grow_rows(head.bias[:, None], n_new)
        head.bias = nn.Parameter(bias.detach()[:, 0])
    head.out_features += n_new
