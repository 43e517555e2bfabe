"""第6章: 記号表の検索と、それを「柔らかく」した辞書引き。

名前を文字の 2-gram の頻度のベクトルにし、クエリとキーの内積で
似ている度合いを測る。温度を下げると、完全一致の検索に近づく。

>>> bigrams("width")
['^w', 'wi', 'id', 'dt', 'th', 'h$']
"""

from collections import Counter

import torch
from torch import Tensor


def bigrams(name: str) -> list[str]:
    """名前の文字 2-gram（^ と $ は名前の始まりと終わりの印）。"""
    padded = f"^{name}$"
    return [padded[i : i + 2] for i in range(len(padded) - 1)]


def name_vectors(names: list[str]) -> Tensor:
    """名前ごとに、2-gram の頻度を並べた長さ 1 のベクトルを作る。

    返す行列は (len(names), 2-gram の種類数)。同じ綴りなら内積は 1、
    共通の 2-gram が 1 つも無ければ 0 になる。
    """
    counts = [Counter(bigrams(n)) for n in names]
    columns = sorted(set().union(*counts))
    vectors = torch.tensor([[float(c[g]) for g in columns] for c in counts])
    unit: Tensor = vectors / vectors.norm(dim=-1, keepdim=True)
    return unit


def hard_lookup(table: dict[str, float], name: str) -> float:
    """記号表の検索: 完全に一致する名前の値を返す（無ければ KeyError）。"""
    return table[name]


def soft_lookup(
    query: Tensor, keys: Tensor, values: Tensor, temperature: float
) -> tuple[Tensor, Tensor]:
    """すべてのキーとの類似度で値を重み付けして混ぜる。

    query: (n_q, d)、keys: (n_k, d)、values: (n_k, d_v)。
    (混ぜた値 (n_q, d_v), 重み (n_q, n_k)) を返す。
    """
    scores = query @ keys.T  # (n_q, n_k): クエリとキーの類似度
    weights = torch.softmax(scores / temperature, dim=-1)
    return weights @ values, weights
