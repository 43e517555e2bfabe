"""LoRA: 凍結した重みに、低ランクの差分だけを学習して足す（第18章）。

Hu et al. (2022) の LoRA（Low-Rank Adaptation）。線形層の重み
W（nn.Linear の (出力, 入力)）は凍結したまま、
W + (alpha / r) · B A の差分の側 B (出力, r) と A (r, 入力) だけを
学習する。B を 0 で始めるので、包んだ直後の出力は元の層と同じになる。
学習の後は差分を重みに足し込んで（merge）、元と同じ形の nn.Linear に
戻せる。上から、1 つの層を包むクラス、モデルの層を差し替える関数、
足し込む関数、の順に並ぶ。
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


class LoRALinear(nn.Module):
    """nn.Linear を包み、凍結した重みに低ランクの差分を足す。

    出力は base(x) + scale · (x Aᵀ) Bᵀ で、scale = alpha / r。
    (x Aᵀ) Bᵀ の順に掛けるので、(出力, 入力) の大きな差分の行列は
    作らない。
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float) -> None:
        super().__init__()
        if r < 1:
            raise ValueError(f"r={r} です。1 以上にしてください。")
        self.base = base
        self.r = r
        self.scale = alpha / r
        for p in base.parameters():
            p.requires_grad_(False)
        out_features, in_features = base.weight.shape
        self.lora_A = nn.Parameter(torch.empty(r, in_features))
        self.lora_B = nn.Parameter(torch.zeros(out_features, r))
        # A は nn.Linear の重みと同じ規則の乱数。B が 0 なので
        # 差分 B A は 0 から始まり、A には最初から勾配が流れない
        # （B の勾配は A が 0 でないので流れる）
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, x: Tensor) -> Tensor:
        """x (..., 入力) → (..., 出力)。"""
        delta = (x @ self.lora_A.t()) @ self.lora_B.t()
        out: Tensor = self.base(x) + self.scale * delta
        return out

    def delta_weight(self) -> Tensor:
        """重みに足す差分 scale · B A（(出力, 入力)）。"""
        return self.scale * (self.lora_B @ self.lora_A)

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """差分を足し込んだ、元と同じ形の nn.Linear を返す。"""
        base = self.base
        linear = nn.Linear(
            base.in_features,
            base.out_features,
            bias=base.bias is not None,
            device=base.weight.device,
            dtype=base.weight.dtype,
        )
        linear.weight.copy_(base.weight + self.delta_weight())
        if base.bias is not None and linear.bias is not None:
            linear.bias.copy_(base.bias)
        return linear


def add_lora(
    model: nn.Module,
    r: int,
    alpha: float,
    targets: Sequence[str] = ("q_proj", "v_proj"),
) -> list[str]:
    """model の全パラメータを凍結し、名前が targets で終わる線形層を包む。

    既定の targets は注意機構のクエリと値の射影（Hu et al. が GPT-3
    の実験で主に選んだ組）。包んだ層の名前の一覧を返す。凍結は
    包む前に行うので、後から足した頭などは凍結されない。
    """
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is nn.Linear and child_name in targets:
                setattr(module, child_name, LoRALinear(child, r, alpha))
                wrapped.append(
                    f"{name}.{child_name}" if name else child_name
                )
    if not wrapped:
        raise ValueError(
            f"名前が {tuple(targets)} の nn.Linear が見つかりません。"
            "model.named_modules() で層の名前を確かめてください。"
        )
    return wrapped


def merge_lora(model: nn.Module) -> int:
    """model の中の LoRALinear を、差分を足し込んだ nn.Linear に戻す。

    戻した層の数を返す。足し込んだ後の層は凍結したまま
    （requires_grad=False）にする。
    """
    count = 0
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                linear = child.merged().requires_grad_(False)
                setattr(module, child_name, linear)
                count += 1
    return count


def count_trainable(model: nn.Module) -> int:
    """学習するパラメータ（requires_grad=True）の要素数。"""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
