"""第13章 (2/6): トークン ID をベクトルに変える表。

>>> import importlib, torch
>>> cfg = importlib.import_module("listings.ch13.01_config")
>>> emb = importlib.import_module("listings.ch13.02_embedding")
>>> _ = torch.manual_seed(0)
>>> tok = emb.TokenEmbedding(cfg.Config())
>>> ids = torch.tensor([[3, 1, 4, 1, 5]])  # (batch, seq)
>>> tok(ids).shape  # (batch, seq, d_model)
torch.Size([1, 5, 64])
>>> x = tok(ids)
>>> torch.equal(x[0, 1], x[0, 3])  # 同じ ID は、どこでも同じベクトル
True
"""

import importlib

from torch import Tensor, nn

cfg = importlib.import_module("listings.ch13.01_config")


class TokenEmbedding(nn.Module):
    def __init__(self, c: "cfg.Config") -> None:
        super().__init__()
        self.table = nn.Embedding(c.vocab_size, c.d_model)

    def forward(self, ids: Tensor) -> Tensor:
        # (batch, seq) → (batch, seq, d_model)。ID で表の行を引くだけ
        out: Tensor = self.table(ids)
        return out
