"""第13章 (3/6): 位置の埋め込みを足し、ドロップアウトをかける。

>>> import importlib, torch
>>> cfg = importlib.import_module("listings.ch13.01_config")
>>> pos = importlib.import_module("listings.ch13.03_position")
>>> _ = torch.manual_seed(0)
>>> emb = pos.InputEmbedding(cfg.Config())
>>> ids = torch.tensor([[3, 1, 4, 1, 5]])
>>> x = emb(ids)
>>> x.shape
torch.Size([1, 5, 64])
>>> torch.equal(x[0, 1], x[0, 3])  # 同じ ID でも、位置が違えば違う
False
>>> emb(torch.zeros(1, 25, dtype=torch.long))
Traceback (most recent call last):
    ...
ValueError: 長さ 25 は block_size=24 を超えています
"""

import importlib

import torch
from torch import Tensor, nn

cfg = importlib.import_module("listings.ch13.01_config")
emb = importlib.import_module("listings.ch13.02_embedding")


class InputEmbedding(nn.Module):
    def __init__(self, c: "cfg.Config") -> None:
        super().__init__()
        self.block_size = c.block_size
        self.tok = emb.TokenEmbedding(c)
        # GPT-2 と同じく、位置ごとのベクトルも学習で決める
        self.pos = nn.Embedding(c.block_size, c.d_model)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, ids: Tensor) -> Tensor:
        seq = ids.size(1)
        if seq > self.block_size:
            raise ValueError(
                f"長さ {seq} は block_size={self.block_size} を超えています"
            )
        positions = torch.arange(seq, device=ids.device)
        # (batch, seq, d) + (seq, d): 位置のベクトルはバッチに
        # ブロードキャストされる
        out: Tensor = self.drop(self.tok(ids) + self.pos(positions))
        return out
