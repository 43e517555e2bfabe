"""第11章: Post-LN と Pre-LN の Transformer を同じ設定で学習させる。

課題は数字の列を逆順にする reverse（easy_transformer.tasks）。
違いは TransformerConfig の norm_first だけで、データの順序も重みの
初期値も同じ乱数のシードから作る。
"""

import random

import torch
import torch.nn.functional as F

from easy_transformer import tasks
from easy_transformer.attention import padding_mask
from easy_transformer.transformer import Transformer, TransformerConfig


def train_reverse(
    norm_first: bool,
    n_layers: int,
    lr: float,
    steps: int,
    seed: int = 0,
) -> list[float]:
    """reverse の課題で steps 回更新し、各ステップの損失を返す。

    エンコーダとデコーダを n_layers 層ずつ積んだ小さなモデル
    （d_model=32）を、ウォームアップなしの Adam で学習させる。
    """
    splits = tasks.make_splits(
        "reverse", seed=0, n_train=2000, n_valid=0, n_test=0, max_level=8
    )
    vocab = splits.vocab()
    torch.manual_seed(seed)
    config = TransformerConfig(
        src_vocab_size=len(vocab),
        tgt_vocab_size=len(vocab),
        d_model=32,
        n_heads=4,
        n_encoder_layers=n_layers,
        n_decoder_layers=n_layers,
        d_ff=64,
        dropout=0.0,
        max_len=16,
        norm_first=norm_first,
    )
    model = Transformer(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rng = random.Random(seed)
    losses = []
    for _ in range(steps):
        batch = tasks.make_batch(rng.sample(splits.train, 32), vocab)
        # デコーダには <bos> 出力 を入れ、出力 <eos> を予測させる
        tgt_in, tgt_out = batch.tgt[:, :-1], batch.tgt[:, 1:]
        logits = model(
            batch.src,
            tgt_in,
            padding_mask(batch.src, tasks.PAD_ID),
            padding_mask(tgt_in, tasks.PAD_ID),
        )
        loss = F.cross_entropy(
            logits.flatten(0, 1),
            tgt_out.flatten(),
            ignore_index=tasks.PAD_ID,
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
