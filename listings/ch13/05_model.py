"""第13章 (5/6): 埋め込み、ブロックの積み重ね、出力層をつないだ GPT。

>>> import importlib, math, torch
>>> cfg = importlib.import_module("listings.ch13.01_config")
>>> gpt = importlib.import_module("listings.ch13.05_model")
>>> _ = torch.manual_seed(0)
>>> model = gpt.GPT(cfg.Config())
>>> ids = torch.tensor([[3, 1, 4, 10, 3, 1, 4]])
>>> logits = model(ids)
>>> logits.shape  # 各位置で、次のトークンの 13 通りのスコア
torch.Size([1, 7, 13])
>>> sum(p.numel() for p in model.parameters())
102464
>>> model.head.weight is model.emb.tok.table.weight  # 重みの共有
True
>>> F = torch.nn.functional
>>> loss = F.cross_entropy(logits[0, :-1], ids[0, 1:])  # 次を当てる
>>> round(loss.item(), 2), round(math.log(13), 2)  # 学習前は当て推量
(2.68, 2.56)
"""

import importlib

from torch import Tensor, nn

cfg = importlib.import_module("listings.ch13.01_config")
pos = importlib.import_module("listings.ch13.03_position")
blk = importlib.import_module("listings.ch13.04_block")


class GPT(nn.Module):
    def __init__(self, c: "cfg.Config") -> None:
        super().__init__()
        self.config = c
        self.emb = pos.InputEmbedding(c)
        self.blocks = nn.ModuleList(blk.Block(c) for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model)  # Pre-LN は最後にも正規化
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.head.weight = self.emb.tok.table.weight  # 入力の表と共有
        for m in self.modules():  # GPT-2 の初期化: 平均 0、標準偏差 0.02
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, ids: Tensor) -> Tensor:
        # (batch, seq) → (batch, seq, vocab_size) のロジット
        x = self.emb(ids)
        for block in self.blocks:
            x = block(x)
        logits: Tensor = self.head(self.ln_f(x))
        return logits
