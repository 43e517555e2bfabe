"""第6章: 単純な注意機構（縮小付き内積注意）を自分で書く。

完成品は easy_transformer.attention.scaled_dot_product_attention で、
こちらにはマスクとドロップアウトが無い。
"""

import math

import torch
from torch import Tensor


def simple_attention(
    q: Tensor, k: Tensor, v: Tensor
) -> tuple[Tensor, Tensor]:
    """softmax(q kᵀ / √d_k) v と注意の重みを返す。

    q: (..., q_len, d_k)、k: (..., k_len, d_k)、v: (..., k_len, d_v)。
    先頭の次元（batch など）はいくつあってもよい。
    """
    d_k = q.size(-1)
    # 最後の 2 つの次元だけを転置し、先頭の次元はそのまま対応させる
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)
    weights = torch.softmax(scores, dim=-1)  # 各クエリについて和が 1
    return weights @ v, weights
