"""easy_transformer.transformer のテスト。

参照実装: nn.Transformer に、nn.Embedding（×√d_model）と DistilBERT の
正弦波の位置エンコーディングと nn.Linear の出力層を付けたもの。
"""

from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch
from helpers import (
    copy_decoder_layer,
    copy_encoder_layer,
    randomize,
    swap_params,
)
from torch import Tensor, nn
from transformers.models.distilbert.modeling_distilbert import (
    create_sinusoidal_embeddings,
)

from easy_transformer.attention import causal_mask, padding_mask
from easy_transformer.transformer import Transformer, TransformerConfig

PAD, BOS, EOS = 0, 1, 2


class TorchReference(nn.Module):
    """nn.Transformer で組んだ、原論文の構成の参照モデル。"""

    def __init__(self, c: TransformerConfig) -> None:
        super().__init__()
        self.c = c
        self.src_embed = nn.Embedding(c.src_vocab_size, c.d_model)
        self.tgt_embed = nn.Embedding(c.tgt_vocab_size, c.d_model)
        pe = torch.empty(c.max_len, c.d_model)
        self.pe = create_sinusoidal_embeddings(c.max_len, c.d_model, pe)
        with warnings.catch_warnings():
            # Pre-LN では入れ子テンソルの高速経路が使えない、という警告
            warnings.filterwarnings("ignore", "enable_nested_tensor")
            self.transformer = nn.Transformer(
                c.d_model,
                c.n_heads,
                c.n_encoder_layers,
                c.n_decoder_layers,
                c.d_ff,
                c.dropout,
                c.activation,
                batch_first=True,
                norm_first=c.norm_first,
            )
        if not c.norm_first:
            # nn.Transformer は Post-LN でも最後に正規化を足すが、
            # 原論文にはないので外す
            self.transformer.encoder.norm = None
            self.transformer.decoder.norm = None
        self.out = nn.Linear(c.d_model, c.tgt_vocab_size, bias=False)
        if c.tie_weights:
            self.out.weight = self.tgt_embed.weight

    def embed(self, emb: nn.Embedding, ids: Tensor) -> Tensor:
        x: Tensor = emb(ids) * math.sqrt(self.c.d_model)
        x = x + self.pe[: ids.size(1)]
        return x

    def forward(
        self, src: Tensor, tgt: Tensor, tgt_padding: bool = True
    ) -> Tensor:
        """tgt_padding=False なら tgt の PAD を隠さない。

        生成の途中の列は、モデルが PAD（ID 0）を出してもパディングでは
        ないので、生成のループでは False にする。
        """
        # 勾配を取る状態のまま呼び、推論専用の高速経路を通さない
        y = self.transformer(
            self.embed(self.src_embed, src),
            self.embed(self.tgt_embed, tgt),
            tgt_mask=~causal_mask(tgt.size(1)),  # nn は True が「隠す」
            src_key_padding_mask=src == PAD,
            tgt_key_padding_mask=(tgt == PAD) if tgt_padding else None,
            memory_key_padding_mask=src == PAD,
            tgt_is_causal=True,
        )
        logits: Tensor = self.out(y)
        return logits


def make_pair(norm_first: bool) -> tuple[Transformer, TorchReference]:
    config = TransformerConfig(
        src_vocab_size=23,
        tgt_vocab_size=19,
        d_model=32,
        n_heads=4,
        n_encoder_layers=2,
        n_decoder_layers=3,
        d_ff=64,
        max_len=40,
        norm_first=norm_first,
    )
    torch.manual_seed(0)
    ref = TorchReference(config).eval()
    randomize(ref)
    ours = Transformer(config).eval()
    ours.src_embed.embed.load_state_dict(ref.src_embed.state_dict())
    ours.tgt_embed.embed.load_state_dict(ref.tgt_embed.state_dict())
    encoder, decoder = ref.transformer.encoder, ref.transformer.decoder
    for mine, theirs in zip(
        ours.encoder.layers, encoder.layers, strict=True
    ):
        copy_encoder_layer(mine, theirs)
    for mine, theirs in zip(
        ours.decoder.layers, decoder.layers, strict=True
    ):
        copy_decoder_layer(mine, theirs)
    if norm_first:
        assert (
            ours.encoder.norm is not None and ours.decoder.norm is not None
        )
        ours.encoder.norm.load_state_dict(encoder.norm.state_dict())
        ours.decoder.norm.load_state_dict(decoder.norm.state_dict())
    return ours, ref


def padded(lengths: list[int], seq: int, vocab: int) -> Tensor:
    g = torch.Generator().manual_seed(seq)
    ids = torch.randint(3, vocab, (len(lengths), seq), generator=g)
    for row, n in enumerate(lengths):
        ids[row, n:] = PAD
    return ids


@pytest.mark.parametrize("norm_first", [True, False])
def test_transformer_matches_nn_transformer(norm_first: bool) -> None:
    ours, ref = make_pair(norm_first)
    src = padded([9, 4, 7], 9, 23)
    tgt = padded([6, 6, 2], 6, 19)
    logits = ours(src, tgt, padding_mask(src, PAD), padding_mask(tgt, PAD))
    torch.testing.assert_close(logits, ref(src, tgt))


TRANSFORMER_MUTATIONS = [
    ("encoder.norm.weight", "decoder.norm.weight"),
    ("encoder.norm.bias", "decoder.norm.bias"),
    ("encoder.layers.1.ffn.fc2.bias", "decoder.layers.0.ffn.fc2.bias"),
    (
        "decoder.layers.0.cross_attn_res.norm.weight",
        "decoder.layers.1.cross_attn_res.norm.weight",
    ),
]


@pytest.mark.parametrize("mutation", TRANSFORMER_MUTATIONS)
def test_mutated_copy_is_caught(mutation: tuple[str, str]) -> None:
    # 変異のテスト: 層や最後の LN を取り違えて写すと、比較が必ず落ちる
    ours, ref = make_pair(norm_first=True)
    src = padded([9, 4, 7], 9, 23)
    tgt = padded([6, 6, 2], 6, 19)
    with torch.no_grad():
        expected = ref(src, tgt)
        masks = padding_mask(src, PAD), padding_mask(tgt, PAD)
        correct = float((ours(src, tgt, *masks) - expected).abs().max())
        swap_params(ours, *mutation)
        broken = float((ours(src, tgt, *masks) - expected).abs().max())
    # 正しい写しの差は 4e-7 程度。変異の差は 1.6e-2〜2（assert_close の
    # 許容誤差 1e-5 の 1000 倍以上）
    assert correct < 1e-5
    assert broken > 1e-3


def test_padding_tokens_do_not_change_real_positions() -> None:
    ours, _ = make_pair(norm_first=True)
    src = padded([5, 3], 8, 23)
    tgt = padded([4, 2], 4, 19)
    other = src.clone()
    other[src == PAD] = 7  # パディングの位置に別のトークンを置く
    pad_mask = padding_mask(src, PAD)
    a = ours(src, tgt, pad_mask)
    b = ours(other, tgt, pad_mask)
    torch.testing.assert_close(a, b)


def test_greedy_decode_matches_reference_loop() -> None:
    ours, ref = make_pair(norm_first=False)
    src = padded([7, 7, 3], 7, 23)
    got = ours.greedy_decode(
        src,
        BOS,
        EOS,
        max_new_tokens=10,
        src_padding_mask=padding_mask(src, PAD),
    )
    # 参照モデルで 1 トークンずつ argmax を取る
    ys = torch.full((3, 1), BOS)
    for _ in range(10):
        ys = torch.cat(
            [
                ys,
                ref(src, ys, tgt_padding=False)[:, -1].argmax(
                    -1, keepdim=True
                ),
            ],
            1,
        )
    # eos のあとは eos で埋める約束なので、参照側もそろえる
    after_eos = (ys == EOS).long().cumsum(1) - (ys == EOS).long() > 0
    ys = ys.masked_fill(after_eos, EOS)
    assert torch.equal(got, ys[:, : got.size(1)])
    assert got[:, 0].tolist() == [BOS] * 3


def test_greedy_decode_stops_when_all_rows_emit_eos() -> None:
    ours, _ = make_pair(norm_first=True)
    src = padded([5], 5, 23)
    free = ours.greedy_decode(src, BOS, None, max_new_tokens=6)
    eos = int(free[0, 3])  # 3 つ目に出るトークンを eos とみなす
    first = 1 + int((free[0, 1:] == eos).nonzero()[0])
    stopped = ours.greedy_decode(src, BOS, eos, max_new_tokens=6)
    assert stopped[0].tolist() == free[0, : first + 1].tolist()


def test_beam_search_of_width_one_is_greedy() -> None:
    ours, _ = make_pair(norm_first=True)
    src = padded([6], 6, 23)
    greedy = ours.greedy_decode(src, BOS, None, max_new_tokens=8)
    beam = ours.beam_search(src[0], BOS, beam_size=1, max_new_tokens=8)
    assert beam.tolist() == greedy[0].tolist()


def test_full_width_beam_search_matches_exhaustive_search() -> None:
    # 幅を 語彙数 ** 長さ にすると、ビームサーチはすべての列を調べる
    # ので、全探索の最良と一致する（幅 2〜4 では貪欲法より確率の低い
    # 列を返すこともあり、「貪欲法以上」は一般には成り立たない）。
    ours, _ = make_pair(norm_first=True)
    src = padded([6], 6, 23)
    vocab, length = ours.config.tgt_vocab_size, 3
    seqs = torch.tensor(
        list(itertools.product(range(vocab), repeat=length))
    )
    ys = torch.cat([torch.full((len(seqs), 1), BOS), seqs], dim=1)
    with torch.no_grad():
        logits = ours(src.expand(len(ys), -1), ys[:, :-1])
    log_probs = (
        logits.log_softmax(-1).gather(-1, ys[:, 1:, None]).sum((1, 2))
    )
    top2 = log_probs.topk(2).values
    assert float(top2[0] - top2[1]) > 1e-4  # 最良が同点でない
    best = ys[int(log_probs.argmax())]
    beam = ours.beam_search(
        src[0],
        BOS,
        beam_size=vocab**length,
        max_new_tokens=length,
        length_penalty=0.0,
    )
    assert beam.tolist() == best.tolist()


# ---- 悪い入力 -------------------------------------------------------


def test_too_long_source_is_rejected() -> None:
    ours, _ = make_pair(norm_first=True)
    src = torch.full((1, 41), 5)
    with pytest.raises(ValueError, match="系列長 41 が最大長 40"):
        ours.encode(src)


def test_ids_outside_vocab_are_rejected() -> None:
    ours, _ = make_pair(norm_first=True)
    src = torch.tensor([[3, 4, 23]])
    with pytest.raises(ValueError, match=r"語彙にない ID.*vocab_size=23"):
        ours(src, torch.tensor([[BOS]]))


def test_heads_must_divide_d_model() -> None:
    config = TransformerConfig(10, 10, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="d_model=30 が n_heads=4"):
        Transformer(config)
