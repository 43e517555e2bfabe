"""第14章: クエリ・キー・値を 1 回の行列積で作る自己注意。

第13章の素朴な版と完成品の MultiHeadAttention は、3 つの nn.Linear で
クエリ・キー・値を作る。ここでは (d_model, 3 * d_model) の 1 つの
nn.Linear で 3 つをまとめて作り、結果を 3 つに切り分ける。

>>> import torch
>>> _ = torch.manual_seed(0)
>>> attn = FusedSelfAttention(d_model=16, n_heads=4, block_size=8)
>>> x = torch.randn(2, 5, 16)
>>> attn(x).shape
torch.Size([2, 5, 16])
>>> attn.use_sdpa = False  # 自前の計算に切り替えても同じ値
>>> y = attn(x)
>>> attn.use_sdpa = True
>>> torch.allclose(y, attn(x), atol=1e-6)
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from easy_transformer.attention import (
    MultiHeadAttention,
    causal_mask,
    scaled_dot_product_attention,
)


class FusedSelfAttention(nn.Module):
    """因果マスク付きの多頭の自己注意。QKV を 1 つの行列積で作る。

    use_sdpa=True なら F.scaled_dot_product_attention で、False なら
    easy_transformer の自前の関数で注意を計算する。
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        block_size: int,
        use_sdpa: bool = True,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.n_heads = n_heads
        self.use_sdpa = use_sdpa
        # 重みは (3 * d_model, d_model)。行の前から順に Q・K・V の分
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        # 因果マスクは学習しないが、モデルと一緒に .to(device) で
        # 動いてほしい。重みから作り直せるので state_dict には入れない
        self.register_buffer(
            "mask", causal_mask(block_size), persistent=False
        )

    def split_heads(self, t: Tensor) -> Tensor:
        """(batch, seq, d_model) → (batch, heads, seq, d_k)。"""
        batch, seq, _ = t.shape
        t = t.view(batch, seq, self.n_heads, -1)
        return t.transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        batch, seq, _ = x.shape
        q, k, v = self.qkv(x).split(self.d_model, dim=-1)
        q, k, v = map(self.split_heads, (q, k, v))
        if self.use_sdpa:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            mask = self.mask[:seq, :seq]
            out, _ = scaled_dot_product_attention(q, k, v, mask)
        out = out.transpose(1, 2).reshape(batch, seq, self.d_model)
        y: Tensor = self.out_proj(out)
        return y


@torch.no_grad()
def load_from_separate(
    fused: FusedSelfAttention, mha: MultiHeadAttention
) -> None:
    """3 つの nn.Linear の重みを、縦に積んで 1 つの行列へ写す。

    nn.Linear の重みは (出力, 入力) の形なので、出力の次元（dim=0）で
    つなぐと、出力の列が Q・K・V の順に並ぶ。
    """
    projs = (mha.q_proj, mha.k_proj, mha.v_proj)
    fused.qkv.weight.copy_(torch.cat([p.weight for p in projs], dim=0))
    fused.qkv.bias.copy_(torch.cat([p.bias for p in projs], dim=0))
    fused.out_proj.load_state_dict(mha.out_proj.state_dict())
