"""easy_transformer.gpt のテスト。

参照実装: Hugging Face transformers の GPT2LMHeadModel。小さな設定で
ランダムに初期化し（ダウンロードしない）、`gpt_from_hf_state_dict` で
変換した GPT と、ロジット・生成列・初期化の分布を比べる。
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.utils import logging

from easy_transformer.attention import MultiHeadAttention
from easy_transformer.gpt import GPT, GPTConfig, gpt_from_hf_state_dict

VOCAB, BLOCK = 100, 32


def make_hf(seed: int = 0, **overrides: int) -> GPT2LMHeadModel:
    # 語彙の外にある既定の bos/eos への注意を黙らせる
    logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    torch.manual_seed(seed)
    sizes: dict[str, Any] = {
        "n_layer": 2,
        "n_head": 4,
        "n_embd": 64,
        "vocab_size": VOCAB,
        "n_positions": BLOCK,
    }
    config = GPT2Config(
        **(sizes | overrides), bos_token_id=None, eos_token_id=None
    )
    model = GPT2LMHeadModel(config)
    model.eval()  # type: ignore[no-untyped-call]
    return model


@pytest.fixture(scope="module")
def pair() -> tuple[GPT2LMHeadModel, GPT]:
    hf = make_hf()
    return hf, gpt_from_hf_state_dict(hf.state_dict(), n_heads=4)


def prompt(batch: int = 3, seq: int = 5, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, (batch, seq), generator=g)


def hf_generate(
    hf: GPT2LMHeadModel,
    ids: Tensor,
    eos_id: int | None = None,
    **kwargs: object,
) -> Tensor:
    # HF の既定の top_k=50 を切る（こちらの既定は top_k=None）
    kwargs = {"top_k": 0} | kwargs
    out: Tensor = hf.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        eos_token_id=eos_id,
        pad_token_id=0 if eos_id is None else eos_id,
        **kwargs,
    )
    return out


# ---- 変換と構造 ------------------------------------------------------


def test_config_is_read_from_shapes(
    pair: tuple[GPT2LMHeadModel, GPT],
) -> None:
    _, ours = pair
    assert ours.config == GPTConfig(
        vocab_size=VOCAB,
        block_size=BLOCK,
        n_layers=2,
        n_heads=4,
        d_model=64,
    )


@pytest.mark.parametrize("fast", [True, False])
def test_logits_match_hf(
    pair: tuple[GPT2LMHeadModel, GPT], fast: bool
) -> None:
    hf, _ = pair
    ours = gpt_from_hf_state_dict(hf.state_dict(), n_heads=4)
    for module in ours.modules():
        if isinstance(module, MultiHeadAttention):
            module.fast = fast
    ids = prompt(4, BLOCK)
    with torch.no_grad():
        expected = hf(ids).logits
        got = ours(ids)
    assert got.shape == (4, BLOCK, VOCAB)
    torch.testing.assert_close(got, expected)


def test_embedding_and_output_share_weights() -> None:
    model = GPT(
        GPTConfig(
            vocab_size=50, block_size=8, n_layers=1, n_heads=2, d_model=16
        )
    )
    assert model.lm_head.weight is model.tok_emb.embed.weight


def test_initialization_matches_hf_statistics() -> None:
    # GPT-2 の初期化: 重みは標準偏差 0.02、残差に足し込む射影だけ
    # 0.02 / √(2 × 層数)、LayerNorm は 1 と 0、バイアスは 0
    hf = make_hf(n_layer=4, n_embd=256, n_head=4, vocab_size=2000)
    torch.manual_seed(1)
    ours = GPT(
        GPTConfig(
            vocab_size=2000,
            block_size=BLOCK,
            n_layers=4,
            n_heads=4,
            d_model=256,
        )
    )
    converted = gpt_from_hf_state_dict(hf.state_dict(), n_heads=4)
    hf_params = dict(converted.named_parameters())
    for name, p in ours.named_parameters():
        ref = hf_params[name]
        assert p.mean().item() == pytest.approx(
            ref.mean().item(), abs=2e-3
        ), name
        assert p.std().item() == pytest.approx(
            ref.std().item(), rel=0.1, abs=1e-6
        ), name


# ---- 生成 -----------------------------------------------------------


@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_generation_matches_hf(
    pair: tuple[GPT2LMHeadModel, GPT], use_cache: bool
) -> None:
    hf, ours = pair
    ids = prompt()
    expected = hf_generate(hf, ids, max_new_tokens=20, do_sample=False)
    got = ours.generate(ids, 20, use_cache=use_cache)
    assert torch.equal(got, expected)


def test_greedy_with_repetition_penalty_matches_hf(
    pair: tuple[GPT2LMHeadModel, GPT],
) -> None:
    hf, ours = pair
    ids = prompt(seed=1)
    expected = hf_generate(
        hf, ids, max_new_tokens=20, do_sample=False, repetition_penalty=1.5
    )
    assert torch.equal(
        ours.generate(ids, 20, repetition_penalty=1.5), expected
    )


def test_greedy_with_eos_matches_hf(
    pair: tuple[GPT2LMHeadModel, GPT],
) -> None:
    hf, ours = pair
    ids = prompt(seed=2)
    free = ours.generate(ids, 15)
    eos = int(free[0, 8])  # 1 本目が途中で出すトークンを eos とみなす
    expected = hf_generate(
        hf, ids, eos_id=eos, max_new_tokens=15, do_sample=False
    )
    got = ours.generate(ids, 15, eos_id=eos)
    assert torch.equal(got, expected)
    assert (got[0, 5:] == eos).any()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": 0.8, "top_k": 20},
        {"top_p": 0.9},
        {"temperature": 1.3, "top_k": 30, "top_p": 0.8},
        {"repetition_penalty": 1.5},
    ],
)
def test_sampling_matches_hf_with_the_same_seed(
    pair: tuple[GPT2LMHeadModel, GPT], kwargs: dict[str, Any]
) -> None:
    hf, ours = pair
    ids = prompt(seed=3)
    torch.manual_seed(1)
    expected = hf_generate(
        hf, ids, max_new_tokens=20, do_sample=True, **kwargs
    )
    torch.manual_seed(1)
    got = ours.generate(ids, 20, do_sample=True, **kwargs)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("seed", range(4))
def test_kv_cache_gives_the_same_tokens(
    pair: tuple[GPT2LMHeadModel, GPT], seed: int
) -> None:
    _, ours = pair
    ids = prompt(2, 3, seed)
    outs = [
        ours.generate(
            ids,
            BLOCK - 3,
            do_sample=True,
            temperature=1.5,
            top_p=0.95,
            use_cache=use_cache,
            generator=torch.Generator().manual_seed(seed),
        )
        for use_cache in [True, False]
    ]
    assert outs[0].shape == (2, BLOCK)
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("beam_size", [2, 3, 5])
def test_beam_search_matches_hf(
    pair: tuple[GPT2LMHeadModel, GPT], beam_size: int
) -> None:
    hf, ours = pair
    ids = prompt(1, 5, seed=4)
    expected = hf_generate(
        hf, ids, max_new_tokens=8, num_beams=beam_size, do_sample=False
    )
    got = ours.beam_search(ids, beam_size, max_new_tokens=8)
    assert got.tolist() == expected[0].tolist()


def test_beam_search_of_width_one_is_greedy(
    pair: tuple[GPT2LMHeadModel, GPT],
) -> None:
    _, ours = pair
    ids = prompt(1, 4)
    beam = ours.beam_search(ids[0], 1, max_new_tokens=10)
    assert beam.tolist() == ours.generate(ids, 10)[0].tolist()


# ---- 悪い入力 -------------------------------------------------------


def test_heads_must_divide_d_model() -> None:
    with pytest.raises(ValueError, match="d_model=100 が n_heads=12"):
        GPTConfig(d_model=100, n_heads=12)


def test_sizes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="n_layers=0 です。1 以上"):
        GPTConfig(n_layers=0)


def test_too_long_input_is_rejected(
    pair: tuple[GPT2LMHeadModel, GPT],
) -> None:
    _, ours = pair
    with pytest.raises(
        ValueError, match="系列長 33 が最大長 32（GPT では block_size）"
    ):
        ours(prompt(1, BLOCK + 1))
    with pytest.raises(ValueError, match="系列長 40 が最大長 32"):
        ours.generate(prompt(1, 20), max_new_tokens=20)


@pytest.mark.parametrize("bad", [-1, VOCAB, VOCAB + 7])
def test_ids_outside_vocab_are_rejected(
    pair: tuple[GPT2LMHeadModel, GPT], bad: int
) -> None:
    _, ours = pair
    ids = torch.tensor([[3, bad, 5]])
    with pytest.raises(
        ValueError, match=f"語彙にない ID.*vocab_size={VOCAB}"
    ):
        ours(ids)


def test_one_dimensional_ids_are_rejected(
    pair: tuple[GPT2LMHeadModel, GPT],
) -> None:
    _, ours = pair
    with pytest.raises(ValueError, match=r"2 次元.*ids\[None\]"):
        ours(torch.tensor([1, 2, 3]))


def broken(hf: GPT2LMHeadModel, edit: str) -> dict[str, Tensor]:
    sd = dict(hf.state_dict())
    if edit == "missing":
        del sd["transformer.h.1.mlp.c_fc.bias"]
    elif edit == "shape":
        sd["transformer.h.0.attn.c_attn.weight"] = torch.zeros(64, 64)
    elif edit == "no_layers":
        sd = {k: v for k, v in sd.items() if ".h." not in k}
    elif edit == "gap":  # 層 1 を層 2 に付け替え、番号を飛ばす
        sd = {k.replace(".h.1.", ".h.2."): v for k, v in sd.items()}
    elif edit == "untied":
        sd["lm_head.weight"] = torch.randn(VOCAB, 64)
    elif edit == "not_gpt2":
        sd = {"encoder.weight": torch.zeros(3)}
    return sd


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("missing", "'h.1.mlp.c_fc.bias' がありません"),
        (
            "shape",
            r"'h.0.attn.c_attn.weight' の形が \(64, 64\) で、期待した \(64, 192\)",
        ),
        ("no_layers", "層の重み"),
        ("gap", "GPT-2 にないキー.*層の番号が飛んで"),
        ("untied", "lm_head.weight が wte.weight と違います"),
        ("not_gpt2", "埋め込みの重み"),
    ],
)
def test_broken_state_dict_is_rejected(
    pair: tuple[GPT2LMHeadModel, GPT], edit: str, message: str
) -> None:
    hf, _ = pair
    with pytest.raises(ValueError, match=message):
        gpt_from_hf_state_dict(broken(hf, edit), n_heads=4)


def test_wrong_head_count_is_rejected(
    pair: tuple[GPT2LMHeadModel, GPT],
) -> None:
    hf, _ = pair
    with pytest.raises(ValueError, match="d_model=64 が n_heads=5"):
        gpt_from_hf_state_dict(hf.state_dict(), n_heads=5)


def test_gpt2_model_without_lm_head_also_loads(
    pair: tuple[GPT2LMHeadModel, GPT],
) -> None:
    hf, ours = pair
    body = (
        hf.transformer.state_dict()
    )  # GPT2Model には "transformer." が付かない
    model = gpt_from_hf_state_dict(body, n_heads=4)
    ids = prompt()
    with torch.no_grad():
        torch.testing.assert_close(model(ids), ours(ids))
