"""第11章: Post-LN と Pre-LN の Transformer を同じ設定で学習させる。

課題は数字の列を逆順にする reverse（easy_transformer.tasks）。
違いは TransformerConfig の norm_first だけで、データの順序も重みの
初期値も同じ乱数のシードから作る。
"""

import random
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from easy_transformer import tasks
from easy_transformer.attention import padding_mask
from easy_transformer.transformer import Transformer, TransformerConfig


@dataclass
class History:
    """学習の記録。grad_norms[s][i] は s 回目の更新での i 層目の勾配。

    層はエンコーダの 1 層目から順に、デコーダの最後の層まで並べる。
    """

    losses: list[float] = field(default_factory=list)
    grad_norms: list[list[float]] = field(default_factory=list)


def layer_grad_norms(model: Transformer) -> list[float]:
    """エンコーダとデコーダの各層の、パラメータ全体の勾配のノルム。"""
    layers: list[nn.Module] = [*model.encoder.layers, *model.decoder.layers]
    return [
        torch.cat([p.grad.flatten() for p in layer.parameters()])
        .norm()
        .item()
        for layer in layers
    ]


def train_reverse(
    norm_first: bool,
    n_layers: int,
    lr: float,
    steps: int,
    seed: int = 0,
) -> History:
    """reverse の課題で steps 回更新し、損失と層ごとの勾配を記録する。

    エンコーダとデコーダを n_layers 層ずつ積んだ小さなモデル
    （d_model=32）を、ウォームアップなしの Adam で学習させる。
    スレッドの数で浮動小数点の足し算の順序が変わり、結果の末尾の桁が
    揺れるので、1 スレッドで計算してから元の数に戻す。
    """
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(norm_first, n_layers, lr, steps, seed)
    finally:
        torch.set_num_threads(n_threads)


def _train(
    norm_first: bool, n_layers: int, lr: float, steps: int, seed: int
) -> History:
    splits = tasks.make_splits(
        "reverse", seed=0, n_train=2000, n_valid=0, n_test=0, max_level=8
    )
    vocab = splits.vocab()
    torch.manual_seed(seed)
    config = TransformerConfig(
        src_vocab_size=vocab.vocab_size,
        tgt_vocab_size=vocab.vocab_size,
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
    history = History()
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
        history.losses.append(loss.item())
        history.grad_norms.append(layer_grad_norms(model))
        optimizer.step()
    return history
