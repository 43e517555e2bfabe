"""第3章: 自作の autograd.Function。log-sum-exp を順伝播と逆伝播で書く。

logsumexp(z) = log Σ exp(z_i) は、交差エントロピーの中に現れる関数で、
その勾配は softmax(z) になる。
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class LogSumExp(torch.autograd.Function):
    """最後の次元について log Σ exp を取る（形 (..., n) → (...)）。"""

    @staticmethod
    def forward(ctx: Any, z: Tensor) -> Tensor:
        m = z.max(dim=-1, keepdim=True).values  # 桁あふれ対策
        out = m.squeeze(-1) + (z - m).exp().sum(dim=-1).log()
        # 逆伝播で使う値を取っておく（softmax は out から作れる）
        ctx.save_for_backward(z, out)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> Tensor:
        z, out = ctx.saved_tensors
        softmax = (z - out.unsqueeze(-1)).exp()
        # 連鎖律: 上流の勾配（形 (...)）を、各要素の偏微分に掛ける
        return grad_out.unsqueeze(-1) * softmax
