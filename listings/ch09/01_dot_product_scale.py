"""第9章: 内積の分散は次元 d_k に比例して大きくなる。

クエリとキーの各成分が平均 0・分散 1 の独立な乱数なら、内積
q·k = Σ q_i k_i は d_k 個の「分散 1 の項」の和なので、分散は d_k になる。
√d_k で割れば、次元によらず分散は 1 に戻る。
"""

import torch


def dot_products(d_k: int, n: int = 10000, seed: int = 0) -> torch.Tensor:
    """標準正規分布から作った q と k の組 n 個の内積 (n,) を返す。"""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, d_k, generator=g)
    k = torch.randn(n, d_k, generator=g)
    return (q * k).sum(dim=-1)


def mean_max_weight(
    d_k: int, seq: int = 16, scale: bool = True, seed: int = 0
) -> float:
    """seq 個のキーに対する softmax の最大の重みを、1000 個のクエリで平均。

    値が 1 に近いほど、softmax が 1 つのキーに張り付いている。
    """
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(1000, 1, d_k, generator=g)
    k = torch.randn(1000, seq, d_k, generator=g)
    scores = (q @ k.transpose(-2, -1)).squeeze(1)
    if scale:
        scores = scores / d_k**0.5
    return scores.softmax(dim=-1).max(dim=-1).values.mean().item()
