"""easy_transformer.attention のテスト。

参照実装: F.scaled_dot_product_attention、nn.MultiheadAttention、
Hugging Face の LlamaAttention（RoPE つきの注意）。
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import load_from_torch, randomize, swap_params
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import (
    LlamaAttention,
    LlamaRotaryEmbedding,
)

from easy_transformer.attention import (
    Backend,
    KVCache,
    MultiHeadAttention,
    causal_mask,
    combine_masks,
    padding_mask,
    scaled_dot_product_attention,
)
from easy_transformer.embedding import RotaryEmbedding


def random_masks(batch: int, q_len: int, k_len: int) -> list[Tensor | None]:
    """None、因果、パディング、その組み合わせ、全部隠れた行を含むもの。"""
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(1, k_len + 1, (batch,), generator=g)
    keep = torch.arange(k_len)[None, :] < lengths[:, None]
    pad = keep[:, None, None, :]
    causal = causal_mask(q_len, k_len)
    rand = torch.rand(batch, 1, q_len, k_len, generator=g) > 0.5
    rand[0, 0, 0] = False  # 全部のキーが隠れた行
    return [None, causal, pad, combine_masks(causal, pad), rand]


# ---- 縮小付き内積注意 -----------------------------------------------


@pytest.mark.parametrize("mask_index", range(5))
def test_sdpa_matches_torch(mask_index: int) -> None:
    torch.manual_seed(0)
    q = torch.randn(3, 2, 5, 8)
    k, v = torch.randn(3, 2, 7, 8), torch.randn(3, 2, 7, 8)
    mask = random_masks(3, 5, 7)[mask_index]
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, ref)
    # 重みは確率分布（全部隠れた行は 0）
    sums = weights.sum(-1)
    assert torch.all(((sums - 1).abs() < 1e-5) | (sums == 0))


@pytest.mark.parametrize("mask_index", range(5))
def test_sdpa_gradcheck(mask_index: int) -> None:
    torch.manual_seed(0)
    q, k, v = (
        torch.randn(2, 2, 4, 3, dtype=torch.float64, requires_grad=True)
        for _ in range(3)
    )
    mask = random_masks(2, 4, 4)[mask_index]

    def attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return scaled_dot_product_attention(q, k, v, mask)[0]

    assert torch.autograd.gradcheck(attention, (q, k, v))


def test_dropout_drops_attention_weights() -> None:
    torch.manual_seed(0)
    q = k = v = torch.randn(1, 1, 50, 4)
    _, weights = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    assert (weights == 0).float().mean().item() == pytest.approx(
        0.5, abs=0.05
    )


# ---- マスク -------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(q_len=st.integers(1, 12), extra=st.integers(0, 12))
def test_causal_mask_with_cache_is_the_bottom_of_the_full_mask(
    q_len: int, extra: int
) -> None:
    k_len = q_len + extra
    # 過去のキーが extra 個あるときのマスクは、全体のマスクの下の行
    full = causal_mask(k_len)
    assert torch.equal(causal_mask(q_len, k_len), full[extra:])
    # 全体のマスクは nn.Transformer のもの（-inf が隠す）と同じ
    ref = nn.Transformer.generate_square_subsequent_mask(k_len)
    assert torch.equal(full, ref == 0)


def test_padding_and_combine() -> None:
    ids = torch.tensor([[5, 6, 0, 0], [7, 0, 0, 0]])
    pad = padding_mask(ids, pad_id=0)
    assert pad.shape == (2, 1, 1, 4)
    assert pad[:, 0, 0].tolist() == [
        [True, True, False, False],
        [True, False, False, False],
    ]
    assert combine_masks(None, None) is None
    assert combine_masks(None, pad) is pad
    both = combine_masks(pad, causal_mask(4))
    assert both is not None
    assert both.shape == (2, 1, 4, 4)
    assert torch.equal(both, pad & causal_mask(4))


# ---- 多頭注意と nn.MultiheadAttention --------------------------------


@pytest.mark.parametrize("backend", ["sdpa", "manual"])
def test_self_attention_matches_torch(backend: Backend) -> None:
    torch.manual_seed(0)
    ours = MultiHeadAttention(32, 4, causal=True, backend=backend).eval()
    ref = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    randomize(ref)  # 既定の初期値はバイアスが 0 で、写し間違いが隠れる
    load_from_torch(ours, ref)
    x = torch.randn(3, 6, 32)
    ids = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4])
    out, weights = ours(x, mask=padding_mask(ids, 0))
    ref_out, ref_weights = ref(
        x,
        x,
        x,
        attn_mask=~causal_mask(6),  # nn は True が「隠す」
        key_padding_mask=ids == 0,
        average_attn_weights=False,
    )
    torch.testing.assert_close(out, ref_out)
    if backend == "sdpa":
        assert weights is None
    else:
        torch.testing.assert_close(weights, ref_weights)


@pytest.mark.parametrize("backend", ["sdpa", "manual"])
def test_cross_attention_matches_torch(backend: Backend) -> None:
    torch.manual_seed(0)
    ours = MultiHeadAttention(32, 4, backend=backend).eval()
    ref = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    randomize(ref)  # 既定の初期値はバイアスが 0 で、写し間違いが隠れる
    load_from_torch(ours, ref)
    x, memory = torch.randn(2, 5, 32), torch.randn(2, 9, 32)
    src = torch.tensor([[3] * 9, [3] * 6 + [0] * 3])
    out, weights = ours(x, memory, mask=padding_mask(src, 0))
    ref_out, ref_weights = ref(
        x,
        memory,
        memory,
        key_padding_mask=src == 0,
        average_attn_weights=False,
    )
    torch.testing.assert_close(out, ref_out)
    if backend == "manual":
        torch.testing.assert_close(weights, ref_weights)


def self_attention_error(mutation: tuple[str, str] | None) -> float:
    """nn.MultiheadAttention との差の最大値（mutation は入れ替える 2 つ）。"""
    torch.manual_seed(0)
    ours = MultiHeadAttention(32, 4, causal=True).eval()
    ref = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    randomize(ref)
    load_from_torch(ours, ref)
    if mutation is not None:
        swap_params(ours, *mutation)
    x = torch.randn(3, 6, 32)
    ref_out, _ = ref(x, x, x, attn_mask=~causal_mask(6))
    with torch.no_grad():
        return float((ours(x)[0] - ref_out).abs().max())


ATTENTION_MUTATIONS = [
    ("q_proj.weight", "k_proj.weight"),
    ("k_proj.weight", "v_proj.weight"),
    ("q_proj.bias", "k_proj.bias"),
    ("k_proj.bias", "v_proj.bias"),
    ("v_proj.bias", "out_proj.bias"),
]


def test_correct_copy_matches_randomized_torch() -> None:
    assert self_attention_error(None) < 1e-5


@pytest.mark.parametrize("mutation", ATTENTION_MUTATIONS)
def test_mutated_copy_is_caught(mutation: tuple[str, str]) -> None:
    # 変異のテスト: 写し間違いを入れると、比較が必ず落ちること。
    # k のバイアスは softmax で消える（どのキーにも同じ値が足される
    # のと同じ）ので、k_proj.bias の取り違えは相手側の値で検出する。
    assert self_attention_error(mutation) > 1e-2


def test_sdpa_and_manual_backends_agree() -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(24, 3)
    x = torch.randn(3, 7, 24)
    for mask in random_masks(3, 7, 7):
        results = []
        backends: list[Backend] = ["sdpa", "manual"]
        for backend in backends:
            mha.backend = backend
            out, _ = mha(x, mask=mask)
            params = list(mha.parameters())
            grads = torch.autograd.grad(out.square().sum(), params)
            results.append((out, grads))
        # 出力も、学習に使う勾配も一致する
        torch.testing.assert_close(results[0], results[1])


def test_mha_gradcheck() -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, causal=True, backend="manual").double()
    x = torch.randn(2, 4, 8, dtype=torch.float64, requires_grad=True)
    pad = padding_mask(torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]), 0)

    def f(x: Tensor, *params: Tensor) -> Tensor:
        out: Tensor = mha(x, mask=pad)[0]
        return out

    assert torch.autograd.gradcheck(f, (x, *mha.parameters()))


# ---- KV キャッシュ ------------------------------------------------


@pytest.mark.parametrize("backend", ["sdpa", "manual"])
@pytest.mark.parametrize("rotary", [False, True])
def test_kv_cache_gives_the_same_outputs(
    backend: Backend, rotary: bool
) -> None:
    torch.manual_seed(0)
    rope = RotaryEmbedding(8, max_len=16) if rotary else None
    mha = MultiHeadAttention(
        32, 4, causal=True, backend=backend, rotary=rope
    )
    mha.eval()
    x = torch.randn(2, 10, 32)
    full, _ = mha(x)
    cache = KVCache()
    # 最初に 4 トークン、そのあと 1 トークンずつ
    parts = [mha(x[:, :4], cache=cache)[0]]
    for t in range(4, 10):
        parts.append(mha(x[:, t : t + 1], cache=cache)[0])
    torch.testing.assert_close(torch.cat(parts, dim=1), full)
    assert cache.length == 10


# ---- RoPE つきの注意と Hugging Face の Llama ---------------------------


def test_rotary_attention_matches_hf_llama() -> None:
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=32,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=16,
        attention_bias=False,
    )
    ref = LlamaAttention(config, layer_idx=0).eval()
    rope = RotaryEmbedding(8, max_len=16)
    ours = MultiHeadAttention(32, 4, bias=False, causal=True, rotary=rope)
    for name in ["q_proj", "k_proj", "v_proj"]:
        getattr(ours, name).load_state_dict(getattr(ref, name).state_dict())
    ours.out_proj.load_state_dict(ref.o_proj.state_dict())

    x = torch.randn(2, 12, 32)
    position_ids = torch.arange(12)[None].expand(2, -1)
    cos_sin = LlamaRotaryEmbedding(config)(x, position_ids)
    additive = torch.zeros(12, 12).masked_fill(
        ~causal_mask(12), float("-inf")
    )
    ref_out, _ = ref(x, cos_sin, additive[None, None])
    torch.testing.assert_close(ours.eval()(x)[0], ref_out)


# ---- 悪い入力 -------------------------------------------------------


def test_heads_must_divide_d_model() -> None:
    with pytest.raises(ValueError, match="d_model=30 が n_heads=4 で割り"):
        MultiHeadAttention(30, 4)


@pytest.mark.parametrize("backend", ["sdpa", "manual"])
@pytest.mark.parametrize(
    "shape", [(5, 5), (2, 1, 1, 6), (4, 1, 1, 7), (1, 2, 1, 1, 7)]
)
def test_mask_of_wrong_shape_is_rejected(
    backend: Backend, shape: tuple[int, ...]
) -> None:
    mha = MultiHeadAttention(16, 2, backend=backend)
    x = torch.randn(2, 7, 16)
    with pytest.raises(
        ValueError, match=r"マスクの形 .*ブロードキャストできません"
    ):
        mha(x, mask=torch.ones(shape, dtype=torch.bool))


def test_mask_of_wrong_shape_is_rejected_by_the_function() -> None:
    q = torch.randn(1, 1, 3, 4)
    with pytest.raises(ValueError, match="ブロードキャストできません"):
        scaled_dot_product_attention(q, q, q, torch.ones(4, 4).bool())


def test_float_mask_is_rejected() -> None:
    mha = MultiHeadAttention(16, 2)
    x = torch.randn(2, 7, 16)
    with pytest.raises(TypeError, match=r"bool.*mask == 0"):
        mha(x, mask=torch.zeros(7, 7))


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match="backend='fast' は知りません"):
        MultiHeadAttention(16, 2, backend="fast")  # type: ignore[arg-type]
    mha = MultiHeadAttention(16, 2)
    mha.backend = "flash"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="backend='flash' は知りません"):
        mha(torch.randn(1, 3, 16))


def test_rotary_with_wrong_head_dim_is_rejected() -> None:
    """RoPE の次元を 1 ヘッドの次元と取り違えたら、直し方を言うエラーにする。"""
    with pytest.raises(ValueError, match=r"RotaryEmbedding\(8, max_len\)"):
        MultiHeadAttention(32, 4, rotary=RotaryEmbedding(32, 16))
