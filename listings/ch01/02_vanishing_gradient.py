"""第1章: 系列の末尾の出力から、各位置の入力へ戻る勾配の大きさを測る。

勾配 ∂(末尾の出力)/∂(位置 t の入力) のノルムは、「末尾の出力が位置 t の
入力にどれだけ敏感か」を表す。学習はこの勾配に沿って重みを直すので、
これが 0 に近い位置の情報は、ほとんど学習に使われない。
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from easy_transformer.attention import MultiHeadAttention

KINDS = ("rnn", "lstm", "lstm_forget1", "attention")


def make_model(kind: str, d: int) -> nn.Module:
    """系列 (1, seq, d) を受けて (1, seq, d) を返す層を作る。"""
    if kind == "rnn":
        return nn.RNN(d, d, batch_first=True)  # tanh の RNN
    if kind.startswith("lstm"):
        lstm = nn.LSTM(d, d, batch_first=True)
        if kind == "lstm_forget1":
            # 忘却ゲートのバイアスを 1 にして、最初は「覚えておく」側に
            # 寄せる（PyTorch の重みの並びは入力・忘却・セル・出力）
            with torch.no_grad():
                lstm.bias_ih_l0[d : 2 * d].fill_(1.0)
                lstm.bias_hh_l0[d : 2 * d].zero_()
        return lstm
    if kind == "attention":
        return MultiHeadAttention(d, n_heads=1, causal=True)
    raise ValueError(f"kind は {KINDS} のどれかにしてください: {kind!r}")


def input_grad_norms(
    kind: str, seq_len: int, d: int = 32, seed: int = 0
) -> Tensor:
    """末尾の出力の和を各位置の入力で微分し、ノルムを並べて返す。

    返り値の添字 k は「末尾からの距離」（k = 0 が末尾の位置）。
    """
    torch.manual_seed(seed)
    model = make_model(kind, d)
    x = torch.randn(1, seq_len, d, requires_grad=True)
    out = model(x)[0]  # RNN・LSTM・注意のどれも (出力, 付属物) を返す
    out[0, -1].sum().backward()
    assert x.grad is not None
    return x.grad[0].norm(dim=-1).flip(0)
