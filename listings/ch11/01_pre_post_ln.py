"""第11章: Post-LN と Pre-LN の Transformer を同じ設定で学習させる。

課題は数字の列を逆順にする reverse（easy_transformer.tasks）。
違いは TransformerConfig の norm_first だけで、データの順序も重みの
初期値も同じ乱数のシードから作る。
"""

import random
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from easy_transformer import tasks
from easy_transformer.attention import padding_mask
from easy_transformer.debug import GradNormMonitor
from easy_transformer.transformer import Transformer, TransformerConfig


@dataclass
class History:
    """学習の記録。grad_norms[s][i] は s 回目の更新での i 層目の勾配。

    層はエンコーダの 1 層目から順に、デコーダの最後の層まで並べる。
    param_changes[i] は、学習の前後での i 層目の重みの相対的な変化
    ||θ_後 - θ_前|| / ||θ_前||。
    """

    losses: list[float] = field(default_factory=list)
    grad_norms: list[list[float]] = field(default_factory=list)
    param_changes: list[float] = field(default_factory=list)


def _layer_params(model: Transformer) -> list[torch.Tensor]:
    """エンコーダとデコーダの各層の重みを、層ごとに 1 本につなぐ。"""
    layers = [*model.encoder.layers, *model.decoder.layers]
    return [
        torch.cat([p.detach().flatten() for p in layer.parameters()])
        for layer in layers
    ]


def layer_grad_norms(monitor: GradNormMonitor) -> list[list[float]]:
    """記録した勾配を、更新ごとに「各層のパラメータ全体のノルム」に直す。

    layer_norms(depth=3) は encoder.layers.0 のような層の単位でまとめる。
    埋め込みや出力層などを除き、エンコーダとデコーダの層だけを残す。
    """
    curves = monitor.layer_norms(depth=3)
    names = [n for n in curves if n.startswith(("encoder.", "decoder."))]
    names = [n for n in names if ".layers." in n]
    per_layer = [curves[n] for n in names]
    return [list(step) for step in zip(*per_layer, strict=True)]


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
    monitor = GradNormMonitor(model)
    before = _layer_params(model)  # torch.cat が写しを作る
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
        monitor.record()  # 各更新の直前の勾配を記録する
        optimizer.step()
    history.grad_norms = layer_grad_norms(monitor)
    history.param_changes = [
        ((after - b).norm() / b.norm()).item()
        for after, b in zip(_layer_params(model), before, strict=True)
    ]
    return history
