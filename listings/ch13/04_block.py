"""第13章 (4/6): Transformer の 1 ブロック（Pre-LN、因果的な自己注意）。

>>> import importlib, torch
>>> cfg = importlib.import_module("listings.ch13.01_config")
>>> blk = importlib.import_module("listings.ch13.04_block")
>>> _ = torch.manual_seed(0)
>>> block = blk.Block(cfg.Config())
>>> x = torch.randn(2, 5, 64)
>>> block(x).shape  # 形は変わらない
torch.Size([2, 5, 64])
>>> y = x.clone()
>>> y[:, 3:] = torch.randn(2, 2, 64)  # 位置 3 より後ろだけを変える
>>> torch.equal(block(x)[:, :3], block(y)[:, :3])  # 前の位置は変わらない
True
"""

import importlib
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

cfg = importlib.import_module("listings.ch13.01_config")


class CausalSelfAttention(nn.Module):
    def __init__(self, c: "cfg.Config") -> None:
        super().__init__()
        self.n_heads = c.n_heads
        self.q = nn.Linear(c.d_model, c.d_model)
        self.k = nn.Linear(c.d_model, c.d_model)
        self.v = nn.Linear(c.d_model, c.d_model)
        self.proj = nn.Linear(c.d_model, c.d_model)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        h = self.n_heads

        def split(z: Tensor) -> Tensor:  # (b, t, d) → (b, h, t, d/h)
            return z.view(b, t, h, d // h).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // h)
        # 因果マスク: 位置 i は 0..i だけを見る
        allowed = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
        weights = self.drop(scores.softmax(dim=-1))
        out = (weights @ v).transpose(1, 2).reshape(b, t, d)
        result: Tensor = self.proj(out)
        return result


class MLP(nn.Module):
    def __init__(self, c: "cfg.Config") -> None:
        super().__init__()
        self.up = nn.Linear(c.d_model, 4 * c.d_model)
        self.down = nn.Linear(4 * c.d_model, c.d_model)

    def forward(self, x: Tensor) -> Tensor:
        # GPT-2 と同じ tanh 近似の GELU
        out: Tensor = self.down(F.gelu(self.up(x), approximate="tanh"))
        return out


class Block(nn.Module):
    def __init__(self, c: "cfg.Config") -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(c.d_model)  # eps は既定の 1e-5
        self.attn = CausalSelfAttention(c)
        self.ln2 = nn.LayerNorm(c.d_model)
        self.mlp = MLP(c)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: Tensor) -> Tensor:
        # Pre-LN: 正規化は副層の入口だけ。残差の道には何も挟まない
        x = x + self.drop(self.attn(self.ln1(x)))
        x = x + self.drop(self.mlp(self.ln2(x)))
        return x
