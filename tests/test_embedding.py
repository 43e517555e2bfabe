"""easy_transformer.embedding のテスト。

参照実装: nn.Embedding、DistilBERT の正弦波の表（原論文の式どおりに
並べた Hugging Face の実装）、Hugging Face の Llama の RoPE。
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import LlamaConfig
from transformers.models.distilbert.modeling_distilbert import (
    create_sinusoidal_embeddings,
)
from transformers.models.llama.modeling_llama import (
    LlamaRotaryEmbedding,
    apply_rotary_pos_emb,
)

from easy_transformer.embedding import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    TokenEmbedding,
    sinusoidal_encoding,
)


@pytest.mark.parametrize("scale", [True, False])
def test_token_embedding_matches_nn_embedding(scale: bool) -> None:
    # 構造の確認に近い: 自分の重みを写した nn.Embedding に √d を掛けた
    # ものと比べるので、独立した参照との一致には数えない。
    # 確かめるのは「表引き × √d_model」という形と scale の切り替え
    torch.manual_seed(0)
    emb = TokenEmbedding(50, 16, scale=scale)
    ref = torch.nn.Embedding(50, 16)
    ref.weight.data.copy_(emb.embed.weight)
    ids = torch.randint(0, 50, (3, 7))
    factor = math.sqrt(16) if scale else 1.0
    torch.testing.assert_close(emb(ids), ref(ids) * factor)


@pytest.mark.parametrize(("max_len", "d_model"), [(50, 16), (512, 64)])
def test_sinusoidal_matches_distilbert(max_len: int, d_model: int) -> None:
    ref = torch.empty(max_len, d_model)
    create_sinusoidal_embeddings(max_len, d_model, ref)
    ours = sinusoidal_encoding(max_len, d_model)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "pos",
    [
        SinusoidalPositionalEncoding(8, 20),
        LearnedPositionalEmbedding(20, 8),
    ],
)
def test_positions_with_offset_continue_the_sequence(
    pos: torch.nn.Module,
) -> None:
    x = torch.randn(2, 10, 8)
    full = pos(x)
    # start=4 で後ろの 6 位置だけを足すと、全体を足した結果の続きになる
    torch.testing.assert_close(pos(x[:, 4:], start=4), full[:, 4:])


def hf_rope(
    q: torch.Tensor, k: torch.Tensor, max_len: int
) -> tuple[torch.Tensor, torch.Tensor]:
    batch, heads, seq, head_dim = q.shape
    config = LlamaConfig(
        hidden_size=heads * head_dim,
        num_attention_heads=heads,
        max_position_embeddings=max_len,
    )
    rope = LlamaRotaryEmbedding(config)
    position_ids = torch.arange(seq)[None].expand(batch, -1)
    cos, sin = rope(q, position_ids)
    q_ref, k_ref = apply_rotary_pos_emb(q, k, cos, sin)
    return q_ref, k_ref


def test_rope_matches_hf_llama() -> None:
    torch.manual_seed(0)
    q, k = torch.randn(2, 4, 24, 16), torch.randn(2, 4, 24, 16)
    rope = RotaryEmbedding(16, max_len=32)
    q_ref, k_ref = hf_rope(q, k, 32)
    torch.testing.assert_close(rope(q), q_ref)
    torch.testing.assert_close(rope(k), k_ref)


@settings(max_examples=50, deadline=None)
@given(
    m=st.integers(0, 60),
    n=st.integers(0, 60),
    shift=st.integers(0, 60),
    seed=st.integers(0, 2**16),
)
def test_rope_dot_product_depends_only_on_relative_position(
    m: int, n: int, shift: int, seed: int
) -> None:
    torch.manual_seed(seed)
    rope = RotaryEmbedding(32, max_len=128)
    q, k = torch.randn(1, 32), torch.randn(1, 32)

    def score(pos_q: int, pos_k: int) -> float:
        return float((rope(q, pos_q) * rope(k, pos_k)).sum())

    # 両方を同じだけずらしても内積は変わらない（相対位置 m - n だけで
    # 決まる）。誤差は float32 の丸めの分だけ
    assert score(m + shift, n + shift) == pytest.approx(
        score(m, n), rel=1e-5, abs=1e-5
    )


def test_rope_is_a_rotation() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 10, 8)
    rope = RotaryEmbedding(8, max_len=10)
    torch.testing.assert_close(rope(x).norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(rope(x)[:, 0], x[:, 0])  # 位置 0 は回さない


# ---- 悪い入力 -------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, 50, 1000])
def test_ids_outside_vocab_are_rejected(bad: int) -> None:
    emb = TokenEmbedding(50, 8)
    ids = torch.tensor([[1, 2, bad]])
    with pytest.raises(ValueError, match=r"語彙にない ID.*vocab_size=50"):
        emb(ids)


def test_float_ids_are_rejected() -> None:
    with pytest.raises(TypeError, match="整数のテンソル"):
        TokenEmbedding(50, 8)(torch.tensor([[1.0, 2.0]]))


@pytest.mark.parametrize(
    "module",
    [
        SinusoidalPositionalEncoding(8, 16),
        LearnedPositionalEmbedding(16, 8),
    ],
)
def test_too_long_sequence_is_rejected(module: torch.nn.Module) -> None:
    x = torch.randn(1, 17, 8)
    with pytest.raises(ValueError, match="系列長 17 が最大長 16"):
        module(x)
    with pytest.raises(ValueError, match="系列長 18 が最大長 16"):
        module(x[:, :10], start=8)


def test_rope_too_long_is_rejected() -> None:
    with pytest.raises(ValueError, match="系列長 9 が最大長 8"):
        RotaryEmbedding(4, max_len=8)(torch.randn(1, 9, 4))


def test_odd_dimensions_are_rejected() -> None:
    with pytest.raises(ValueError, match="偶数"):
        sinusoidal_encoding(10, 7)
    with pytest.raises(ValueError, match="偶数"):
        RotaryEmbedding(7, 10)
