"""Llama 形式の部品と easy_transformer.llama のテスト（第17章）。

参照実装: Hugging Face transformers の LlamaForCausalLM。小さな設定で
作り（ダウンロードしない）、全パラメータを乱数にしてから
`gpt_from_hf_llama_state_dict` で変換し、ロジットと貪欲法の生成列を
比べる。RMSNorm の倍率も 1 のままにしない（1 のままだと、2 つの
RMSNorm の重みを取り違えても差が出ない。それも確かめる）。

わざと壊した変換（q と k の入れ替え、RoPE の組の取り方、GQA のヘッドの
対応、RMSNorm の eps と重みの入れ替え、gate と up の入れ替え）で比較が
必ず落ちることも確かめる。
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.utils import logging

from easy_transformer import attention, llama
from easy_transformer.attention import KVCache
from easy_transformer.embedding import RotaryEmbedding
from easy_transformer.gpt import GPT, GPTConfig
from easy_transformer.layers import LayerNorm, RMSNorm, SwiGLU
from easy_transformer.llama import gpt_from_hf_llama_state_dict

VOCAB, BLOCK, HEADS = 100, 32, 4
EPS, THETA = 1e-5, 1000.0  # どちらも HF の既定値（1e-6、10000）と違う値


def make_hf(
    seed: int = 0,
    randomize: bool = True,
    n_kv_heads: int = 2,
    tied: bool = False,
) -> LlamaForCausalLM:
    """小さな Llama。randomize=True なら全パラメータを乱数にする。"""
    logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=HEADS,
        num_key_value_heads=n_kv_heads,
        max_position_embeddings=BLOCK,
        rms_norm_eps=EPS,
        rope_parameters={"rope_type": "default", "rope_theta": THETA},
        tie_word_embeddings=tied,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    model = LlamaForCausalLM(config)
    model.eval()  # type: ignore[no-untyped-call]
    if randomize:
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.normal_(0.0, 0.2)
                if name.endswith("norm.weight"):
                    p.add_(1.0)  # 1 の周りに散らして信号の大きさを保つ
    return model


def convert(hf: LlamaForCausalLM, eps: float = EPS) -> GPT:
    return gpt_from_hf_llama_state_dict(
        hf.state_dict(),
        n_heads=HEADS,
        eps=eps,
        rope_base=THETA,
        block_size=BLOCK,
    )


def prompt(batch: int = 3, seq: int = BLOCK, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, (batch, seq), generator=g)


def max_error(hf: LlamaForCausalLM, ours: GPT) -> float:
    ids = prompt()
    with torch.no_grad():
        return float((ours(ids) - hf(ids).logits).abs().max())


@pytest.fixture(scope="module")
def hf() -> LlamaForCausalLM:
    return make_hf()


# ---- 一致すること ----------------------------------------------------


def test_hf_config_uses_our_theta(hf: LlamaForCausalLM) -> None:
    params = hf.config.rope_parameters
    assert isinstance(params, dict) and params["rope_theta"] == THETA


def test_config_is_read_from_shapes(hf: LlamaForCausalLM) -> None:
    c = convert(hf).config
    assert (c.vocab_size, c.n_layers, c.d_model) == (VOCAB, 2, 64)
    assert (c.d_ff, c.kv_heads, c.tie_embeddings) == (96, 2, False)
    assert (c.norm, c.mlp, c.position, c.bias) == (
        "rmsnorm",
        "swiglu",
        "rope",
        False,
    )


@pytest.mark.parametrize("backend", ["sdpa", "manual"])
@pytest.mark.parametrize("n_kv_heads", [1, 2, 4])  # MQA、GQA、多頭注意
def test_logits_match_hf(n_kv_heads: int, backend: str) -> None:
    hf = make_hf(n_kv_heads=n_kv_heads)
    ours = convert(hf)
    for m in ours.modules():
        if isinstance(m, attention.MultiHeadAttention):
            m.backend = attention.check_backend(backend)
    ids = prompt()
    with torch.no_grad():
        expected, got = hf(ids).logits, ours(ids)
    assert expected.abs().max() > 1  # 比べる値が小さすぎないこと
    torch.testing.assert_close(got, expected)


def test_tied_embeddings_are_detected() -> None:
    hf = make_hf(tied=True)
    ours = convert(hf)
    assert ours.config.tie_embeddings
    assert ours.lm_head.weight is ours.tok_emb.embed.weight
    ids = prompt()
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf(ids).logits)


@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_generation_matches_hf(
    hf: LlamaForCausalLM, use_cache: bool
) -> None:
    ours = convert(hf)
    ids = prompt(3, 5, seed=1)
    expected = hf.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=20,
        do_sample=False,
        pad_token_id=0,
    )
    got = ours.generate(ids, 20, use_cache=use_cache)
    assert torch.equal(got, expected)


def test_gqa_cache_keeps_only_kv_heads(hf: LlamaForCausalLM) -> None:
    ours = convert(hf)
    caches = [KVCache() for _ in ours.blocks]
    with torch.no_grad():
        ours(prompt(1, 7), caches)
    k = caches[0].k
    assert k is not None and k.shape == (1, 2, 7, 16)  # 4 ヘッドの半分


# ---- 部品の性質 ------------------------------------------------------


def test_rmsnorm_formula_and_difference_from_layernorm() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 8) + 2.0  # 平均が 0 でない入力
    rms = RMSNorm(8, eps=0.0)
    expected = x / x.pow(2).mean(-1, keepdim=True).sqrt()
    torch.testing.assert_close(rms(x), expected)
    # 平均が 0 の入力では LayerNorm（バイアスなし）と同じ
    xc = x - x.mean(-1, keepdim=True)
    torch.testing.assert_close(
        RMSNorm(8, 1e-5)(xc), LayerNorm(8, 1e-5, bias=False)(xc)
    )
    assert not torch.allclose(rms(x), LayerNorm(8, 0.0)(x))


def test_swiglu_formula() -> None:
    torch.manual_seed(0)
    ffn = SwiGLU(8, 12)
    x = torch.randn(2, 3, 8)
    gate = torch.nn.functional.silu(x @ ffn.fc_gate.weight.T)
    expected = (gate * (x @ ffn.fc1.weight.T)) @ ffn.fc2.weight.T
    torch.testing.assert_close(ffn(x), expected)


def test_default_config_is_gpt2() -> None:
    c = GPTConfig(vocab_size=20, block_size=8, n_layers=1, n_heads=2)
    c = GPTConfig(**{**c.__dict__, "d_model": 16})
    model = GPT(c)
    assert model.pos_emb is not None
    assert model.lm_head.weight is model.tok_emb.embed.weight
    names = set(model.state_dict())
    assert "blocks.0.ffn_res.norm.bias" in names
    assert "blocks.0.ffn.fc_gate.weight" not in names


@pytest.mark.parametrize(
    ("field", "value"),
    [("norm", "batchnorm"), ("mlp", "relu"), ("position", "alibi")],
)
def test_unknown_choices_are_rejected(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=field):
        GPTConfig(**{field: value})  # type: ignore[arg-type]


def test_n_kv_heads_must_divide_n_heads() -> None:
    with pytest.raises(ValueError, match="約数"):
        GPTConfig(n_heads=12, n_kv_heads=5)


# ---- RoPE の 2 つの組の取り方 -----------------------------------------


def rope_interleaved(
    self: RotaryEmbedding, x: Tensor, start: int = 0
) -> Tensor:
    """論文の形: 隣り合う 2 次元 (x[2j], x[2j+1]) を組にして回す。"""
    seq, half = x.size(-2), x.size(-1) // 2
    cos = self.cos[start : start + seq, :half]  # 前半だけで全角度
    sin = self.sin[start : start + seq, :half]
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * cos - b * sin, b * cos + a * sin], -1).flatten(
        -2
    )


def half_to_interleaved(head_dim: int) -> list[int]:
    """前半・後半の並びの行を、隣り合う組の並びに並べ替える添字。"""
    half = head_dim // 2
    return [i for j in range(half) for i in (j, j + half)]


def test_interleaved_rope_equals_half_after_permuting_qk(
    hf: LlamaForCausalLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """組の取り方が違っても、W_Q と W_K の行を並べ替えれば同じ関数。"""
    perm = torch.tensor(half_to_interleaved(16))
    sd = dict(hf.state_dict())
    for key in list(sd):
        if key.endswith(("q_proj.weight", "k_proj.weight")):
            w = sd[key].view(-1, 16, 64)  # (ヘッド, head_dim, d_model)
            sd[key] = w[:, perm].reshape(-1, 64)
    monkeypatch.setattr(RotaryEmbedding, "forward", rope_interleaved)
    ours = gpt_from_hf_llama_state_dict(
        sd, n_heads=HEADS, eps=EPS, rope_base=THETA, block_size=BLOCK
    )
    ids = prompt()
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf(ids).logits)


# ---- わざと壊した変換は必ず落ちる -------------------------------------


def swapped_names(a: str, b: str) -> dict[str, str]:
    names = dict(llama.LLAMA_LAYER_NAMES)
    names[a], names[b] = names[b], names[a]
    return names


def repeat_across_groups(x: Tensor, n_rep: int) -> Tensor:
    """誤った GQA の対応: ヘッド h にキーと値のヘッド h % kv を使う。"""
    return x if n_rep == 1 else x.repeat(1, n_rep, 1, 1)


MUTATIONS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "gate_up": lambda mp: mp.setattr(
        llama,
        "LLAMA_LAYER_NAMES",
        swapped_names("mlp.gate_proj.weight", "mlp.up_proj.weight"),
    ),
    "norm_weights": lambda mp: mp.setattr(
        llama,
        "LLAMA_LAYER_NAMES",
        swapped_names(
            "input_layernorm.weight", "post_attention_layernorm.weight"
        ),
    ),
    "rope_pairs": lambda mp: mp.setattr(
        RotaryEmbedding, "forward", rope_interleaved
    ),
    "gqa_mapping": lambda mp: mp.setattr(
        attention, "repeat_kv", repeat_across_groups
    ),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_mutated_conversion_is_caught(
    hf: LlamaForCausalLM, mutation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    MUTATIONS[mutation](monkeypatch)
    assert max_error(hf, convert(hf)) > 1e-2


def test_wrong_eps_is_caught(hf: LlamaForCausalLM) -> None:
    """rms_norm_eps を読み違えて既定の 1e-6 にすると差が出る。"""
    err = max_error(hf, convert(hf, eps=1e-6))
    assert err > 1e-4  # assert_close の許容誤差（1e-5）より十分大きい
    with pytest.raises(AssertionError):
        ids = prompt()
        with torch.no_grad():
            torch.testing.assert_close(
                convert(hf, eps=1e-6)(ids), hf(ids).logits
            )


def test_swapped_q_k_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    names = swapped_names(
        "self_attn.q_proj.weight", "self_attn.k_proj.weight"
    )
    monkeypatch.setattr(llama, "LLAMA_LAYER_NAMES", names)
    # q と k の形が同じ（GQA でない）ときは、ロジットの差で見つかる
    hf = make_hf(n_kv_heads=HEADS)
    assert max_error(hf, convert(hf)) > 1e-2
    # GQA では形が違うので、読み込みの時点でエラーになる
    with pytest.raises(RuntimeError, match="size mismatch"):
        convert(make_hf(n_kv_heads=2))


def test_default_init_hides_swapped_norms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HF の初期値（RMSNorm の倍率がすべて 1）では入れ替えが見えない。"""
    hf = make_hf(randomize=False)
    MUTATIONS["norm_weights"](monkeypatch)
    ids = prompt()
    with torch.no_grad():
        torch.testing.assert_close(convert(hf)(ids), hf(ids).logits)
