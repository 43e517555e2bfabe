"""第15章: 学習した GPT から、層ごと・ヘッドごとの注意の重みを取り出す。

MultiHeadAttention は ``backend="manual"`` のときだけ注意の重みを返す。
GPT のブロックはその重みを捨てるので、forward フックで横取りする。
モデルのコードは書き換えない。
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from easy_transformer.attention import MultiHeadAttention
from easy_transformer.gpt import GPT


@torch.no_grad()
def attention_weights(model: GPT, ids: Tensor) -> list[Tensor]:
    """ids (1, seq) を読ませ、層ごとの重み (heads, seq, seq) を返す。"""
    model.eval()
    captured: list[Tensor] = []

    def hook(module: Any, args: Any, output: Any) -> None:
        captured.append(output[1][0])  # (出力, 重み) の重みの 1 本目

    attns = [
        m for m in model.modules() if isinstance(m, MultiHeadAttention)
    ]
    saved = [attn.backend for attn in attns]
    handles = [attn.register_forward_hook(hook) for attn in attns]
    try:
        for attn in attns:
            attn.backend = "manual"  # 重みを返す自前の実装に切り替える
        model(ids)
    finally:  # 例外で抜けても、フックと設定を元に戻す
        for handle in handles:
            handle.remove()
        for attn, backend in zip(attns, saved, strict=True):
            attn.backend = backend
    return captured


def offset_share(weights: Tensor, offset: int) -> Tensor:
    """各ヘッドが、offset だけ前の位置に置いた重みの平均 (heads,)。

    offset=0 なら自分自身、1 なら直前の文字。対角線から offset だけ
    下の帯を取り出して平均する。
    """
    band = weights.diagonal(offset=-offset, dim1=-2, dim2=-1)
    return band.mean(dim=-1)
