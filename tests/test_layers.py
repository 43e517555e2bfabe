"""easy_transformer.layers のテスト。

参照実装: nn.LayerNorm、nn.TransformerEncoderLayer、
nn.TransformerDecoderLayer、Hugging Face の GELU（tanh 近似）。
層は PyTorch の層から重みを写し、同じ入力で出力を比べる。
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_attention import copy_from_torch
from torch import Tensor, nn
from transformers.activations import NewGELUActivation

from easy_transformer.attention import causal_mask, padding_mask
from easy_transformer.layers import (
    DecoderLayer,
    EncoderLayer,
    FeedForward,
    LayerNorm,
)

D_MODEL, N_HEADS, D_FF = 32, 4, 64


def copy_encoder_layer(ours: nn.Module, ref: nn.Module) -> None:
    assert isinstance(ours, EncoderLayer)
    assert isinstance(ref, nn.TransformerEncoderLayer)
    copy_from_torch(ours.self_attn, ref.self_attn)
    ours.ffn.fc1.load_state_dict(ref.linear1.state_dict())
    ours.ffn.fc2.load_state_dict(ref.linear2.state_dict())
    ours.self_attn_res.norm.load_state_dict(ref.norm1.state_dict())
    ours.ffn_res.norm.load_state_dict(ref.norm2.state_dict())


def copy_decoder_layer(ours: nn.Module, ref: nn.Module) -> None:
    assert isinstance(ours, DecoderLayer)
    assert isinstance(ref, nn.TransformerDecoderLayer)
    assert ours.cross_attn is not None and ours.cross_attn_res is not None
    copy_from_torch(ours.self_attn, ref.self_attn)
    copy_from_torch(ours.cross_attn, ref.multihead_attn)
    ours.ffn.fc1.load_state_dict(ref.linear1.state_dict())
    ours.ffn.fc2.load_state_dict(ref.linear2.state_dict())
    ours.self_attn_res.norm.load_state_dict(ref.norm1.state_dict())
    ours.cross_attn_res.norm.load_state_dict(ref.norm2.state_dict())
    ours.ffn_res.norm.load_state_dict(ref.norm3.state_dict())


def randomize(module: nn.Module) -> None:
    """LayerNorm の倍率と足しも 1 と 0 以外にして、写し漏れを見逃さない。"""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.3)


def right_padded_ids(lengths: list[int], seq: int) -> Tensor:
    return torch.tensor([[1] * n + [0] * (seq - n) for n in lengths])


# ---- LayerNorm ------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    d_model=st.integers(1, 40),
    eps=st.sampled_from([1e-5, 1e-6, 1e-2]),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_layer_norm_matches_torch(
    shape: list[int], d_model: int, eps: float, bias: bool, seed: int
) -> None:
    torch.manual_seed(seed)
    ours = LayerNorm(d_model, eps=eps, bias=bias)
    ref = nn.LayerNorm(d_model, eps=eps, bias=bias)
    randomize(ref)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(*shape, d_model) * 3 + 1
    torch.testing.assert_close(ours(x), ref(x))


def test_layer_norm_default_eps_is_torch_default() -> None:
    assert LayerNorm(8).eps == nn.LayerNorm(8).eps == 1e-5


def test_layer_norm_gradcheck() -> None:
    torch.manual_seed(0)
    norm = LayerNorm(6).double()
    randomize(norm)
    x = torch.randn(3, 4, 6, dtype=torch.float64, requires_grad=True)

    def f(x: Tensor, *params: Tensor) -> Tensor:
        out: Tensor = norm(x)
        return out

    assert torch.autograd.gradcheck(f, (x, *norm.parameters()))


# ---- FeedForward ----------------------------------------------------


@pytest.mark.parametrize(
    ("activation", "ref_activation"),
    [
        ("relu", nn.ReLU()),
        ("gelu", nn.GELU()),
        ("gelu_tanh", NewGELUActivation()),  # GPT-2 の gelu_new
    ],
)
def test_feed_forward_matches_reference(
    activation: str, ref_activation: nn.Module
) -> None:
    torch.manual_seed(0)
    ours = FeedForward(D_MODEL, D_FF, activation)
    ref = nn.Sequential(
        nn.Linear(D_MODEL, D_FF), ref_activation, nn.Linear(D_FF, D_MODEL)
    )
    ours.fc1.load_state_dict(ref[0].state_dict())
    ours.fc2.load_state_dict(ref[2].state_dict())
    x = torch.randn(2, 5, D_MODEL)
    torch.testing.assert_close(ours(x), ref(x))


def test_unknown_activation_is_rejected() -> None:
    with pytest.raises(
        ValueError, match=r"'swish' は知りません.*gelu_tanh"
    ):
        FeedForward(8, 16, "swish")


# ---- エンコーダ層・デコーダ層 ----------------------------------------

LAYER_CASES = [
    (norm_first, activation)
    for norm_first in [True, False]
    for activation in ["relu", "gelu"]
]


@pytest.mark.parametrize(("norm_first", "activation"), LAYER_CASES)
def test_encoder_layer_matches_torch(
    norm_first: bool, activation: str
) -> None:
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(
        D_MODEL,
        N_HEADS,
        D_FF,
        dropout=0.1,
        activation=activation,
        batch_first=True,
        norm_first=norm_first,
    ).eval()
    randomize(ref)
    ours = EncoderLayer(
        D_MODEL, N_HEADS, D_FF, 0.1, activation, norm_first
    ).eval()
    copy_encoder_layer(ours, ref)
    x = torch.randn(3, 7, D_MODEL)
    ids = right_padded_ids([7, 5, 2], 7)
    # 勾配を取る状態のままにして、nn 側の推論専用の高速経路
    # （パディングの位置を 0 にする）を通さない
    expected = ref(x, src_key_padding_mask=ids == 0)
    torch.testing.assert_close(ours(x, padding_mask(ids, 0)), expected)
    torch.testing.assert_close(ours(x), ref(x))


@pytest.mark.parametrize(("norm_first", "activation"), LAYER_CASES)
def test_decoder_layer_matches_torch(
    norm_first: bool, activation: str
) -> None:
    torch.manual_seed(0)
    ref = nn.TransformerDecoderLayer(
        D_MODEL,
        N_HEADS,
        D_FF,
        dropout=0.1,
        activation=activation,
        batch_first=True,
        norm_first=norm_first,
    ).eval()
    randomize(ref)
    ours = DecoderLayer(
        D_MODEL, N_HEADS, D_FF, 0.1, activation, norm_first
    ).eval()
    copy_decoder_layer(ours, ref)
    tgt, memory = torch.randn(3, 6, D_MODEL), torch.randn(3, 8, D_MODEL)
    tgt_ids = right_padded_ids([6, 4, 1], 6)
    src_ids = right_padded_ids([8, 3, 5], 8)
    expected = ref(
        tgt,
        memory,
        tgt_mask=~causal_mask(6),  # nn は True が「隠す」
        tgt_key_padding_mask=tgt_ids == 0,
        memory_key_padding_mask=src_ids == 0,
        tgt_is_causal=True,
    )
    # 因果マスクは自己注意が自分で足すので、渡すのはパディングだけ
    out = ours(
        tgt,
        memory,
        mask=padding_mask(tgt_ids, 0),
        memory_mask=padding_mask(src_ids, 0),
    )
    torch.testing.assert_close(out, expected)


def test_decoder_layer_without_memory_is_rejected() -> None:
    layer = DecoderLayer(D_MODEL, N_HEADS, D_FF)
    with pytest.raises(ValueError, match="memory"):
        layer(torch.randn(1, 3, D_MODEL))


def test_decoder_only_layer_has_no_cross_attention() -> None:
    layer = DecoderLayer(D_MODEL, N_HEADS, D_FF, cross_attention=False)
    assert layer.cross_attn is None
    assert layer(torch.randn(1, 3, D_MODEL)).shape == (1, 3, D_MODEL)
