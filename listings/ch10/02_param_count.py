"""第10章: 注意機構と FFN のパラメータの数を、式と実測で数える。

式はどれも「重みの行列の要素数 + バイアスの要素数」を足しただけ。
実測は、モジュールが持つパラメータの要素数をすべて足す。
"""

from torch import nn


def count_params(module: nn.Module) -> int:
    """パラメータの要素数の合計（共有された重みは 1 度だけ数える）。"""
    return sum(p.numel() for p in module.parameters())


def attention_params(d_model: int) -> int:
    """多頭注意: W_Q, W_K, W_V, W_O（各 d×d）とバイアス（各 d）。"""
    return 4 * (d_model * d_model + d_model)


def ffn_params(d_model: int, d_ff: int) -> int:
    """FFN: fc1（d×d_ff と d_ff）と fc2（d_ff×d と d）。"""
    return (d_model * d_ff + d_ff) + (d_ff * d_model + d_model)


def layer_norm_params(d_model: int) -> int:
    """層正規化: 倍率 γ と足し β（各 d）。"""
    return 2 * d_model
