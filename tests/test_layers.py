"""easy_transformer.layers のテスト。

参照実装: nn.LayerNorm、nn.TransformerEncoderLayer、
nn.TransformerDecoderLayer、Hugging Face の GELU（tanh 近似）。
層は PyTorch の層から重みを写し、同じ入力で出力を比べる。
"""

from __future__ import annotations

import pytest
import torch
from helpers import (
    copy_decoder_layer,
    copy_encoder_layer,
    randomize,
    right_padded_ids,
    swap_params,
)
from hypothesis import given, settings
from hypothesis import strategies as st
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
    # 構造の確認（既定値どうしの比較）。参照との数値の一致には数えない
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
    randomize(ref)  # nn.Linear の既定の初期値でもよいが、そろえておく
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


def encoder_layer_error(mutation: tuple[str, str] | None) -> float:
    """Pre-LN のエンコーダ層と nn の差の最大値（写し間違いを入れて）。"""
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(
        D_MODEL, N_HEADS, D_FF, batch_first=True, norm_first=True
    ).eval()
    randomize(ref)
    ours = EncoderLayer(D_MODEL, N_HEADS, D_FF, norm_first=True).eval()
    copy_encoder_layer(ours, ref)
    if mutation is not None:
        swap_params(ours, *mutation)
    x = torch.randn(3, 7, D_MODEL)
    with torch.no_grad():
        return float((ours(x) - ref(x)).abs().max())


def decoder_layer_error(mutation: tuple[str, str] | None) -> float:
    """Post-LN のデコーダ層と nn の差の最大値（写し間違いを入れて）。"""
    torch.manual_seed(0)
    ref = nn.TransformerDecoderLayer(
        D_MODEL, N_HEADS, D_FF, batch_first=True, norm_first=False
    ).eval()
    randomize(ref)
    ours = DecoderLayer(D_MODEL, N_HEADS, D_FF, norm_first=False).eval()
    copy_decoder_layer(ours, ref)
    if mutation is not None:
        swap_params(ours, *mutation)
    tgt, memory = torch.randn(3, 6, D_MODEL), torch.randn(3, 8, D_MODEL)
    expected = ref(
        tgt, memory, tgt_mask=~causal_mask(6), tgt_is_causal=True
    )
    with torch.no_grad():
        return float((ours(tgt, memory) - expected).abs().max())


ENCODER_MUTATIONS = [
    ("self_attn_res.norm.weight", "ffn_res.norm.weight"),
    ("self_attn_res.norm.bias", "ffn_res.norm.bias"),
    ("self_attn_res.norm.weight", "self_attn_res.norm.bias"),
    ("self_attn.out_proj.bias", "ffn.fc2.bias"),
    ("self_attn.q_proj.weight", "self_attn.k_proj.weight"),
]
DECODER_MUTATIONS = [
    ("self_attn_res.norm.weight", "cross_attn_res.norm.weight"),
    ("cross_attn_res.norm.bias", "ffn_res.norm.bias"),
    ("self_attn.out_proj.bias", "cross_attn.out_proj.bias"),
    ("self_attn.v_proj.weight", "cross_attn.v_proj.weight"),
    ("cross_attn.q_proj.bias", "cross_attn.v_proj.bias"),
]


def test_correct_copies_match_randomized_torch() -> None:
    assert encoder_layer_error(None) < 1e-5
    assert decoder_layer_error(None) < 1e-5


@pytest.mark.parametrize("mutation", ENCODER_MUTATIONS)
def test_mutated_encoder_copy_is_caught(mutation: tuple[str, str]) -> None:
    # 変異のテスト: LN やバイアスの取り違えで、比較が必ず落ちること
    assert encoder_layer_error(mutation) > 1e-2


@pytest.mark.parametrize("mutation", DECODER_MUTATIONS)
def test_mutated_decoder_copy_is_caught(mutation: tuple[str, str]) -> None:
    assert decoder_layer_error(mutation) > 1e-2


def test_decoder_layer_without_memory_is_rejected() -> None:
    layer = DecoderLayer(D_MODEL, N_HEADS, D_FF)
    with pytest.raises(ValueError, match="memory"):
        layer(torch.randn(1, 3, D_MODEL))


def test_decoder_only_layer_has_no_cross_attention() -> None:
    layer = DecoderLayer(D_MODEL, N_HEADS, D_FF, cross_attention=False)
    assert layer.cross_attn is None
    assert layer(torch.randn(1, 3, D_MODEL)).shape == (1, 3, D_MODEL)
