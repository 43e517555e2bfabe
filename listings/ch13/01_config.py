"""第13章 (1/6): モデルの大きさを 1 か所に集める設定。

これから書くクラスはどれも、この設定だけを受け取る。

>>> import importlib
>>> cfg = importlib.import_module("listings.ch13.01_config")
>>> c = cfg.Config()
>>> c
Config(vocab_size=13, block_size=24, d_model=64, n_heads=4,
       n_layers=2, dropout=0.0)
>>> c.d_model // c.n_heads  # 1 つのヘッドが受け持つ次元
16
>>> cfg.Config(d_model=60, n_heads=8)
Traceback (most recent call last):
    ...
ValueError: d_model=60 は n_heads=8 で割り切れません
"""

from dataclasses import dataclass


@dataclass
class Config:
    vocab_size: int = 13  # 数字 10 個、'|'、'.'、'_'
    block_size: int = 24  # 一度に読める最大のトークン数
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads != 0:
            raise ValueError(
                f"d_model={self.d_model} は"
                f" n_heads={self.n_heads} で割り切れません"
            )
