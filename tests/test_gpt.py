"""easy_transformer.gpt のテスト。

参照実装: Hugging Face transformers の GPT2LMHeadModel。小さな設定で
作り（ダウンロードしない）、`gpt_from_hf_state_dict` で変換した GPT と、
ロジット・生成列・初期化の分布を比べる。

HF の既定の初期値は LayerNorm を 1 と 0、バイアスを 0 にする。そのままで
比べると、LN やバイアスの対応を写し間違えても差が出ない。そこで比べる
モデルは全パラメータを乱数にし（`make_hf`）、わざと壊した変換で比較が
落ちることも確かめる（変異のテスト、`test_mutated_conversion_is_caught`）。
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.utils import logging

from easy_transformer import gpt as gpt_module
from easy_transformer.attention import Backend, MultiHeadAttention
from easy_transformer.gpt import GPT, GPTConfig, gpt_from_hf_state_dict

VOCAB, BLOCK = 100, 32


def make_hf(
    seed: int = 0, randomize: bool = True, **overrides: int
) -> GPT2LMHeadModel:
    """小さな GPT-2。randomize=True なら全パラメータを乱数にする。

    HF の既定の初期値（LN が 1 と 0、バイアスが 0）のままでは、LN と
    バイアスの写し間違いが比較に現れない。parameters() は共有した重みを
    1 度しか返さないので、wte と lm_head の共有は保たれる。
    LN の倍率は 1 の周りに散らし、信号の大きさを保つ。
    """
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
    if randomize:
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.normal_(0.0, 0.2)
                if name.endswith(
                    ("ln_1.weight", "ln_2.weight", "ln_f.weight")
                ):
                    p.add_(1.0)
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


@pytest.mark.parametrize("backend", ["sdpa", "manual"])
def test_logits_match_hf(
    pair: tuple[GPT2LMHeadModel, GPT], backend: Backend
) -> None:
    hf, _ = pair
    ours = gpt_from_hf_state_dict(hf.state_dict(), n_heads=4)
    for module in ours.modules():
        if isinstance(module, MultiHeadAttention):
            module.backend = backend
    ids = prompt(4, BLOCK)
    with torch.no_grad():
        expected = hf(ids).logits
        got = ours(ids)
    assert got.shape == (4, BLOCK, VOCAB)
    torch.testing.assert_close(got, expected)


def max_logit_error(hf: GPT2LMHeadModel) -> float:
    """HF と、変換した GPT のロジットの差の最大値。"""
    ours = gpt_from_hf_state_dict(hf.state_dict(), n_heads=4)
    ids = prompt(4, BLOCK)
    with torch.no_grad():
        return float((ours(ids) - hf(ids).logits).abs().max())


def swapped(names: dict[str, str], a: str, b: str) -> dict[str, str]:
    names = dict(names)
    names[a], names[b] = names[b], names[a]
    return names


def _reorder_qkv(order: str, weights: bool, biases: bool) -> Any:
    split = gpt_module._split_c_attn

    def mutated(w: Tensor, b: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
        parts = split(w, b)
        return {
            name: (
                parts[src][0] if weights else parts[name][0],
                parts[src][1] if biases else parts[name][1],
            )
            for name, src in zip("qkv", order, strict=True)
        }

    return mutated


# わざと入れる写し間違い: (書き換える gpt.py の名前, 差し替える値)
MUTATIONS: dict[str, tuple[str, Any]] = {
    "ln_1 と ln_2 の入れ替え": (
        "_HF_LAYER_NAMES",
        swapped(
            swapped(
                gpt_module._HF_LAYER_NAMES, "ln_1.weight", "ln_2.weight"
            ),
            "ln_1.bias",
            "ln_2.bias",
        ),
    ),
    "attention と MLP の出力側のバイアスの入れ替え": (
        "_HF_LAYER_NAMES",
        swapped(
            gpt_module._HF_LAYER_NAMES,
            "attn.c_proj.bias",
            "mlp.c_proj.bias",
        ),
    ),
    "LN の倍率と足しの入れ替え": (
        "_HF_LAYER_NAMES",
        swapped(gpt_module._HF_LAYER_NAMES, "ln_2.weight", "ln_2.bias"),
    ),
    "c_attn の分割順を k, q, v に": (
        "_split_c_attn",
        _reorder_qkv("kqv", weights=True, biases=True),
    ),
    "c_attn の分割順を q, v, k に": (
        "_split_c_attn",
        _reorder_qkv("qvk", weights=True, biases=True),
    ),
    "c_attn のバイアスだけ分割順を取り違え": (
        "_split_c_attn",
        _reorder_qkv("kqv", weights=False, biases=True),
    ),
    "正方行列（c_proj）の転置の忘れ": (
        "_conv1d_to_linear",
        lambda w: w if w.size(0) == w.size(1) else w.t(),
    ),
    "転置の代わりに reshape": (
        "_conv1d_to_linear",
        lambda w: w.reshape(w.shape[::-1]),
    ),
}


def test_correct_conversion_matches_randomized_hf() -> None:
    # 正しい変換の差は 4e-6 程度（float32 の丸め）。変異は 1e-2 を超える
    assert max_logit_error(make_hf()) < 1e-4


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_mutated_conversion_is_caught(
    mutation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 変異のテスト: 変換を壊すと、ロジットの比較が必ず落ちること。
    # HF の既定の初期値のままでは、上の LN とバイアスの変異は差が
    # 1e-5 未満になり見逃す（make_hf の docstring）。
    hf = make_hf()
    attr, value = MUTATIONS[mutation]
    monkeypatch.setattr(gpt_module, attr, value)
    assert max_logit_error(hf) > 1e-2
    ours = gpt_from_hf_state_dict(hf.state_dict(), n_heads=4)
    ids = prompt(4, BLOCK)
    with torch.no_grad(), pytest.raises(AssertionError):
        torch.testing.assert_close(ours(ids), hf(ids).logits)


def test_embedding_and_output_share_weights() -> None:
    # 構造の確認（同じオブジェクトか）。参照との数値の一致には数えない
    model = GPT(
        GPTConfig(
            vocab_size=50, block_size=8, n_layers=1, n_heads=2, d_model=16
        )
    )
    assert model.lm_head.weight is model.tok_emb.embed.weight


def test_initialization_matches_hf_statistics() -> None:
    # GPT-2 の初期化: 重みは標準偏差 0.02、残差に足し込む射影だけ
    # 0.02 / √(2 × 層数)、LayerNorm は 1 と 0、バイアスは 0
    hf = make_hf(
        randomize=False, n_layer=4, n_embd=256, n_head=4, vocab_size=2000
    )
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


SMALL_VOCAB = 12  # eos がビームに現れるよう、語彙を小さくする


@pytest.fixture(scope="module")
def small_pair() -> tuple[GPT2LMHeadModel, GPT]:
    hf = make_hf(seed=5, vocab_size=SMALL_VOCAB)
    return hf, gpt_from_hf_state_dict(hf.state_dict(), n_heads=4)


def hf_beam(
    hf: GPT2LMHeadModel,
    ids: Tensor,
    eos_id: int,
    beam_size: int,
    length_penalty: float,
) -> list[int]:
    """HF のビームサーチの最良の列（eos の後の詰め物を除く）。

    early_stopping="never" は、打ち切りを厳密な上限で行う HF の設定
    （既定の False は、長い仮説が有利な length_penalty > 0 で、今の長さ
    から上限を見積もる近似。HF の _check_early_stop_heuristic）。
    こちらの beam_search の打ち切りは厳密なので、こちらに合わせる。
    """
    out = hf_generate(
        hf,
        ids,
        eos_id=eos_id,
        max_new_tokens=8,
        num_beams=beam_size,
        do_sample=False,
        length_penalty=length_penalty,
        early_stopping="never",
    )[0].tolist()
    new = out[ids.size(1) :]
    if eos_id in new:
        new = new[: new.index(eos_id) + 1]
    return out[: ids.size(1)] + new


def beam_score(
    model: GPT, seq: list[int], n_prefix: int, length_penalty: float
) -> float:
    """生成した部分の対数確率の和 / 長さ ** length_penalty。"""
    ids = torch.tensor([seq])
    with torch.no_grad():
        logp = F.log_softmax(model(ids[:, :-1]), dim=-1)[0]
    picked = logp[n_prefix - 1 :].gather(1, ids[0, n_prefix:, None])
    n_new = len(seq) - n_prefix
    return float(picked.sum()) / math.pow(n_new, length_penalty)


# (種, eos を貪欲法の何番目の生成トークンから取るか, 幅)
BEAM_CASES = [
    (seed, k, beam_size)
    for seed in range(4)
    for k in [1, 3]
    for beam_size in [2, 3, 5]
]


def beam_case(ours: GPT, seed: int, k: int) -> tuple[Tensor, int]:
    """プロンプトと eos を作る。

    eos は貪欲法が k 番目に出すトークンにして、探索の中で eos が実際に
    候補の上位に上がるようにする。
    """
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, SMALL_VOCAB, (1, 4), generator=g)
    return ids, int(ours.generate(ids, k + 1)[0, 4 + k])


# length_penalty が 2 ほど大きいと、この設定では eos で早く終わる仮説が
# 選ばれない（比較が長さ 8 の仮説どうしになる）ので、0.5 と 1 で確かめる。
@pytest.mark.parametrize("length_penalty", [0.5, 1.0])
def test_beam_search_with_eos_matches_hf(
    small_pair: tuple[GPT2LMHeadModel, GPT], length_penalty: float
) -> None:
    # 長さで割る流儀（生成した長さ、eos を含む）が HF と同じなので、
    # eos で長さのそろわない仮説どうしの比較も一致する。
    hf, ours = small_pair
    ended_early = 0
    for seed, k, beam_size in BEAM_CASES:
        ids, eos_id = beam_case(ours, seed, k)
        expected = hf_beam(hf, ids, eos_id, beam_size, length_penalty)
        got = ours.beam_search(
            ids,
            beam_size,
            max_new_tokens=8,
            eos_id=eos_id,
            length_penalty=length_penalty,
        ).tolist()
        assert got == expected, (seed, eos_id, beam_size)
        ended_early += len(got) < 4 + 8
    # eos で早く終わる仮説が実際に選ばれていること（比較が空でない）
    assert ended_early >= 3


@pytest.mark.parametrize("length_penalty", [-1.0, 0.0])
def test_beam_search_differs_from_hf_only_where_hf_drops_hypotheses(
    small_pair: tuple[GPT2LMHeadModel, GPT], length_penalty: float
) -> None:
    # HF との流儀の違い: HF は各ステップで和の大きい候補 2 × 幅 個を
    # 取り、そのうち上位「幅」個に入った eos だけを完成した仮説にする
    # （_update_finished_beams の top_num_beam_mask）。こちらは生きて
    # いるビームから出たすべての eos を完成した仮説として比べる。
    # 生きたビームの選び方は同じなので、こちらの仮説の集合は HF の
    # 集合を含み、スコアは HF 以上になる。短い仮説が有利な
    # length_penalty <= 0 では、上位に入らない短い eos の仮説が最良に
    # なることがあり、そのときだけ結果が違う。
    # eos には、最初のステップで「幅」番目（0 から数えて）に確率の高い
    # トークン、つまり HF の上位「幅」個からちょうど外れるものを選ぶ。
    hf, ours = small_pair
    differ = 0
    for seed in range(4):
        for beam_size in [2, 3, 5]:
            g = torch.Generator().manual_seed(seed)
            ids = torch.randint(0, SMALL_VOCAB, (1, 4), generator=g)
            with torch.no_grad():
                ranked = ours(ids)[0, -1].argsort(descending=True)
            eos_id = int(ranked[beam_size])
            differ += _compare_with_hf_beam(
                hf, ours, ids, eos_id, beam_size, length_penalty
            )
    assert differ > 0  # 違いが実際に起きる場合を含んでいること


def _compare_with_hf_beam(
    hf: GPT2LMHeadModel,
    ours: GPT,
    ids: Tensor,
    eos_id: int,
    beam_size: int,
    length_penalty: float,
) -> bool:
    """HF と結果が違えば、違いが流儀で説明できることを確かめて True。"""
    expected = hf_beam(hf, ids, eos_id, beam_size, length_penalty)
    got = ours.beam_search(
        ids,
        beam_size,
        max_new_tokens=8,
        eos_id=eos_id,
        length_penalty=length_penalty,
    ).tolist()
    if got == expected:
        return False
    ours_score = beam_score(ours, got, 4, length_penalty)
    hf_score = beam_score(ours, expected, 4, length_penalty)
    assert ours_score > hf_score + 1e-6, (ids, eos_id, beam_size)
    assert got[-1] == eos_id
    return True


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
