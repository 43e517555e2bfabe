"""easy_transformer.generation のテスト。

正しさは自分で書いた期待値ではなく、次の参照との一致で示す。
- ロジットの加工: Hugging Face transformers の LogitsProcessor。
- 温度とフィルタ付きのサンプリング: 参照の分布と、多数回引いた頻度。
- ビームサーチ: 小さな語彙・短い長さでの全探索。
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

import easy_transformer.generation as gen_module
from easy_transformer.attention import KVCache
from easy_transformer.generation import (
    apply_repetition_penalty,
    beam_search,
    generate_left_padded,
    left_pad,
    position_ids,
    sample_next_token,
    top_k_filter,
    top_p_filter,
)
from easy_transformer.gpt import GPT, GPTConfig

# HF の warper は input_ids を使わないが、引数としては要る。
_DUMMY_IDS = torch.zeros(1, 1, dtype=torch.long)


def _random_logits(*shape: int, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * 3


def _hf_top_k(logits: Tensor, k: int) -> Tensor:
    out: Tensor = TopKLogitsWarper(top_k=k)(_DUMMY_IDS, logits)
    return out


def _hf_top_p(logits: Tensor, p: float) -> Tensor:
    out: Tensor = TopPLogitsWarper(top_p=p)(_DUMMY_IDS, logits)
    return out


# ---------------------------------------------------------------- top-k


@pytest.mark.parametrize("k", [1, 2, 5, 10, 11, 50])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_k_matches_hf_on_batch(k: int, seed: int) -> None:
    logits = _random_logits(6, 11, seed=seed)
    assert torch.equal(top_k_filter(logits, k), _hf_top_k(logits, k))


@pytest.mark.parametrize("k", [1, 3, 7])
def test_top_k_1d_and_3d_match_row_by_row(k: int) -> None:
    # バッチでも 1 次元でも、各行を HF に 1 行ずつ渡した結果と一致する。
    batch = _random_logits(2, 3, 9)
    out = top_k_filter(batch, k)
    for i, j in itertools.product(range(2), range(3)):
        row = batch[i, j]
        expected = _hf_top_k(row[None], k)[0]
        assert torch.equal(top_k_filter(row, k), expected)
        assert torch.equal(out[i, j], expected)


def test_top_k_rows_are_independent() -> None:
    # 企画書のスケッチの誤り（バッチ全体で 1 つのしきい値）を捕まえる:
    # 値の大きさがまるで違う行を並べても、各行で k 個ずつ残る。
    logits = torch.stack([_random_logits(8), _random_logits(8) + 100])
    kept = torch.isfinite(top_k_filter(logits, 3)).sum(dim=-1)
    assert kept.tolist() == [3, 3]


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.integers(-3, 3), min_size=6, max_size=6),
        min_size=1,
        max_size=4,
    ),
    k=st.integers(1, 8),
)
def test_top_k_ties_match_hf(rows: list[list[int]], k: int) -> None:
    # 小さな整数で同点を多く作る。同点の扱いも HF と同じ（全部残す）。
    logits = torch.tensor(rows, dtype=torch.float32)
    assert torch.equal(top_k_filter(logits, k), _hf_top_k(logits, k))


def test_top_k_does_not_modify_input() -> None:
    logits = _random_logits(3, 7)
    before = logits.clone()
    top_k_filter(logits, 2)
    assert torch.equal(logits, before)


# ---------------------------------------------------------------- top-p


@pytest.mark.parametrize("p", [1e-6, 0.1, 0.3, 0.5, 0.8, 0.95, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_p_matches_hf_on_batch(p: float, seed: int) -> None:
    logits = _random_logits(6, 11, seed=seed)
    assert torch.equal(top_p_filter(logits, p), _hf_top_p(logits, p))


@pytest.mark.parametrize("p", [0.2, 0.6, 0.9])
def test_top_p_1d_and_3d_match_row_by_row(p: float) -> None:
    batch = _random_logits(2, 3, 9, seed=5)
    out = top_p_filter(batch, p)
    for i, j in itertools.product(range(2), range(3)):
        row = batch[i, j]
        expected = _hf_top_p(row[None], p)[0]
        assert torch.equal(top_p_filter(row, p), expected)
        assert torch.equal(out[i, j], expected)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("seed", range(5))
def test_top_p_keeps_smallest_prefix_reaching_p(
    p: float, seed: int
) -> None:
    # 定義からの全探索: 上位から何個残せば初めて確率の和が p 以上になるか。
    logits = _random_logits(10, seed=seed).double()
    probs = logits.softmax(-1)
    order = probs.argsort(descending=True).tolist()
    need = next(
        n
        for n in range(1, len(order) + 1)
        if float(probs[order[:n]].sum()) >= p
    )
    kept = torch.isfinite(top_p_filter(logits, p)).nonzero().flatten()
    assert sorted(kept.tolist()) == sorted(order[:need])


def test_top_p_boundary_reaching_p_exactly() -> None:
    # 確率がちょうど [0.5, 0.25, 0.125, 0.125]（2 の冪なので誤差なし）。
    # p=0.5 は 1 個目で「ちょうど p 以上」になるので 1 個だけ残す。
    logits = torch.tensor([3.0, 2.0, 1.0, 1.0]) * math.log(2)
    assert logits.softmax(-1).tolist() == [0.5, 0.25, 0.125, 0.125]
    for p, n_kept in [(0.5, 1), (0.75, 2)]:
        out = top_p_filter(logits, p)
        assert int(torch.isfinite(out).sum()) == n_kept
        assert torch.equal(out[None], _hf_top_p(logits[None], p))


def test_top_p_keeps_all_ties_at_the_boundary() -> None:
    # 2 位と 3 位が同点。2 位まで取れば p に届くが、3 位も残す。
    logits = torch.tensor([2.0, 1.0, 1.0, -1.0])
    out = top_p_filter(logits, 0.6)
    assert torch.isfinite(out).tolist() == [True, True, True, False]


# ---------------------------------------------------- repetition penalty


@pytest.mark.parametrize("penalty", [0.5, 1.0, 1.2, 2.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_repetition_penalty_matches_hf(penalty: float, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    logits = _random_logits(4, 12, seed=seed)
    logits[0, 3] = 0.0  # 0 はどちらの規則でも 0 のまま
    # 語彙より短い範囲から引いて、重複する ID を必ず作る。
    prev_ids = torch.randint(0, 6, (4, 9), generator=g)
    expected = RepetitionPenaltyLogitsProcessor(penalty)(
        prev_ids, logits.clone()
    )
    assert torch.equal(
        apply_repetition_penalty(logits, prev_ids, penalty), expected
    )


def test_repetition_penalty_empty_history_is_identity() -> None:
    logits = _random_logits(2, 5)
    prev_ids = torch.zeros(2, 0, dtype=torch.long)
    assert torch.equal(
        apply_repetition_penalty(logits, prev_ids, 1.5), logits
    )


# --------------------------------------------------------------- sampling


def _assert_frequencies_match(samples: Tensor, probs: Tensor) -> None:
    """頻度が分布に合うことを、各トークンで 5 標準偏差以内として確かめる。

    n 回引いたときの頻度の標準偏差は sqrt(p (1 - p) / n)。正しい実装が
    5σ を外れる確率は 1 トークンあたり 6e-7 程度で、シードも固定する。
    """
    n = samples.numel()
    freq = torch.bincount(samples, minlength=probs.numel()).double() / n
    sigma = (probs * (1 - probs) / n).sqrt()
    assert torch.all((freq - probs).abs() <= 5 * sigma + 1e-12), (
        freq,
        probs,
    )


_N_SAMPLES = 40_000


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_temperature_sampling_distribution(temperature: float) -> None:
    logits = torch.tensor([1.0, 0.0, -0.5, 2.0, 0.3])
    g = torch.Generator().manual_seed(0)
    samples = sample_next_token(
        logits.expand(_N_SAMPLES, -1), temperature=temperature, generator=g
    )
    expected = (logits.double() / temperature).softmax(-1)
    # HF の TemperatureLogitsWarper とも同じ分布であることを確かめておく。
    hf = TemperatureLogitsWarper(temperature)(_DUMMY_IDS, logits[None])
    torch.testing.assert_close(hf[0].double().softmax(-1), expected)
    _assert_frequencies_match(samples, expected)


def test_temperature_tolerance_can_tell_temperatures_apart() -> None:
    # 上の許容誤差が緩すぎないこと: T=0.5 と T=2 の分布の差は 5σ より
    # ずっと大きい（温度を無視する実装はテストに落ちる）。
    logits = torch.tensor([1.0, 0.0, -0.5, 2.0, 0.3]).double()
    a, b = (logits / 0.5).softmax(-1), (logits / 2.0).softmax(-1)
    sigma = (a * (1 - a) / _N_SAMPLES).sqrt()
    assert float(((a - b).abs() / sigma).max()) > 50


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"),
    [(0.7, 3, None), (1.5, None, 0.8), (1.3, 4, 0.7), (0.8, 6, 0.6)],
)
def test_filtered_sampling_matches_hf_pipeline(
    temperature: float, top_k: int | None, top_p: float | None
) -> None:
    # transformers の generate と同じ順（温度 → top-k → top-p）で加工した
    # 分布から引いていることを、頻度で確かめる。
    logits = torch.tensor([[1.0, 0.0, -0.5, 2.0, 0.3, 1.5, -1.0]])
    ref = TemperatureLogitsWarper(temperature)(_DUMMY_IDS, logits)
    if top_k is not None:
        ref = _hf_top_k(ref, top_k)
    if top_p is not None:
        ref = _hf_top_p(ref, top_p)
    expected = ref[0].double().softmax(-1)
    g = torch.Generator().manual_seed(1)
    samples = sample_next_token(
        logits.expand(_N_SAMPLES, -1),
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        generator=g,
    )
    assert set(samples.tolist()) <= set(
        expected.nonzero().flatten().tolist()
    )
    _assert_frequencies_match(samples, expected)


def test_greedy_is_argmax_and_ignores_filters() -> None:
    logits = _random_logits(8, 13)
    expected = logits.argmax(-1)
    assert torch.equal(sample_next_token(logits, do_sample=False), expected)
    assert torch.equal(
        sample_next_token(
            logits, do_sample=False, temperature=0.3, top_k=2, top_p=0.5
        ),
        expected,
    )
    # top-k=1 のサンプリングは貪欲法と同じ。
    assert torch.equal(sample_next_token(logits, top_k=1), expected)


def test_sampling_is_reproducible_with_generator() -> None:
    logits = _random_logits(16, 20)
    a = sample_next_token(
        logits, generator=torch.Generator().manual_seed(3)
    )
    b = sample_next_token(
        logits, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(a, b)
    assert a.shape == (16,)
    assert a.dtype == torch.long


# ------------------------------------------------------------ bad inputs


@pytest.mark.parametrize(
    "call",
    [
        lambda x: sample_next_token(x, temperature=0.0),
        lambda x: sample_next_token(x, temperature=-1.0),
        lambda x: sample_next_token(x, temperature=math.nan),
        lambda x: sample_next_token(x, top_k=0),
        lambda x: sample_next_token(x, top_p=0.0),
        lambda x: sample_next_token(x, top_p=1.5),
        lambda x: sample_next_token(x, do_sample=False, top_k=-1),
        lambda x: sample_next_token(x[0]),
        lambda x: sample_next_token(x[None]),
        lambda x: top_k_filter(x, 0),
        lambda x: top_p_filter(x, -0.1),
        lambda x: top_p_filter(x, math.nan),
        lambda x: apply_repetition_penalty(x, torch.zeros(2, 3).long(), 0),
        lambda x: apply_repetition_penalty(
            x, torch.zeros(3, 3).long(), 1.2
        ),
        lambda x: apply_repetition_penalty(x, torch.zeros(2).long(), 1.2),
        lambda x: apply_repetition_penalty(
            x, torch.full((2, 1), 5).long(), 1.2
        ),
        lambda x: apply_repetition_penalty(x[0], torch.zeros(1, 1), 1.2),
    ],
)
def test_bad_arguments_raise_value_error(
    call: Callable[[Tensor], object],
) -> None:
    logits = _random_logits(2, 5)
    with pytest.raises(ValueError, match="ください"):
        call(logits)


# ------------------------------------------------------------ beam search


class HashLM:
    """系列だけから決まる、ランダムな「言語モデル」。

    次トークンの対数確率は、(seed, 系列) を種にした乱数で作る。呼ぶ順に
    よらない純粋な関数なので、ビームサーチと全探索が同じモデルを見る。
    """

    def __init__(
        self, vocab: int, seed: int, eos_id: int | None, eos_bias: float
    ) -> None:
        self.vocab = vocab
        self.seed = seed
        self.eos_id = eos_id
        self.eos_bias = eos_bias
        self.calls = 0
        self._cache: dict[tuple[int, ...], Tensor] = {}

    def row(self, seq: tuple[int, ...]) -> Tensor:
        if seq not in self._cache:
            rng = np.random.default_rng([self.seed, len(seq), *seq])
            logits = torch.from_numpy(rng.normal(size=self.vocab) * 2.0)
            if self.eos_id is not None:
                logits[self.eos_id] += self.eos_bias
            self._cache[seq] = logits.log_softmax(-1)
        return self._cache[seq]

    def __call__(self, beams: Tensor) -> Tensor:
        self.calls += 1
        return torch.stack([self.row(tuple(b)) for b in beams.tolist()])


def _score(
    lm: HashLM, prefix: list[int], gen: tuple[int, ...], lp: float
) -> float:
    """ビームサーチと同じ順・同じ型で足して、同じ丸めにする。"""
    total = torch.zeros((), dtype=torch.float64)
    for t, tok in enumerate(gen):
        total = total + lm.row(tuple(prefix) + gen[:t])[tok]
    return float(total / len(gen) ** lp)


def _exhaustive(
    lm: HashLM,
    prefix: list[int],
    max_new: int,
    eos_id: int | None,
    lp: float,
) -> list[tuple[float, tuple[int, ...]]]:
    """完成しうるすべての仮説をスコアの降順で返す。"""
    hyps = []
    for length in range(1, max_new + 1):
        for gen in itertools.product(range(lm.vocab), repeat=length):
            if eos_id is not None and eos_id in gen[:-1]:
                continue  # eos の後は伸ばさない
            ends_with_eos = eos_id is not None and gen[-1] == eos_id
            if ends_with_eos or length == max_new:
                hyps.append((_score(lm, prefix, gen, lp), gen))
    return sorted(hyps, key=lambda h: h[0], reverse=True)


_BEAM_CASES = [
    # (語彙数, 生成長, eos_id, eos にかける下駄)
    (4, 3, None, 0.0),
    (5, 3, None, 0.0),
    (4, 4, None, 0.0),
    (4, 3, 0, 0.0),
    (5, 4, 2, 0.0),
    (4, 4, 3, 1.5),  # eos が出やすく、打ち切りが効く
    (5, 3, 1, 3.0),
    (3, 5, 1, 0.5),
]


@pytest.mark.parametrize(
    ("vocab", "max_new", "eos_id", "bias"), _BEAM_CASES
)
@pytest.mark.parametrize("length_penalty", [-2.0, -0.5, 0.0, 0.6, 1.0, 2.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_full_width_beam_search_equals_exhaustive_search(
    vocab: int,
    max_new: int,
    eos_id: int | None,
    bias: float,
    length_penalty: float,
    seed: int,
) -> None:
    lm = HashLM(vocab, seed, eos_id, bias)
    prefix = [1, 3]
    ranked = _exhaustive(lm, prefix, max_new, eos_id, length_penalty)
    best_score, best_gen = ranked[0]
    # 同点があると「最良の列」が一意に決まらないので、ないことを確かめる。
    assert ranked[1][0] < best_score

    out = beam_search(
        lm,
        torch.tensor(prefix),
        beam_size=vocab**max_new,
        max_new_tokens=max_new,
        eos_id=eos_id,
        length_penalty=length_penalty,
    )
    assert out.tolist() == prefix + list(best_gen)


@pytest.mark.parametrize(
    ("vocab", "max_new", "eos_id", "bias"), _BEAM_CASES
)
@pytest.mark.parametrize("beam_size", [1, 2, 3])
def test_narrow_beam_returns_a_valid_hypothesis(
    vocab: int,
    max_new: int,
    eos_id: int | None,
    bias: float,
    beam_size: int,
) -> None:
    # 幅が狭いと最良とは限らないが、返すのは完成した仮説のどれかで、
    # 全探索の最良を超えることはない。
    lm = HashLM(vocab, 7, eos_id, bias)
    prefix = [2]
    ranked = _exhaustive(lm, prefix, max_new, eos_id, 1.0)
    out = beam_search(
        lm,
        torch.tensor(prefix),
        beam_size=beam_size,
        max_new_tokens=max_new,
        eos_id=eos_id,
    )
    gen = tuple(out.tolist()[len(prefix) :])
    assert gen in {g for _, g in ranked}
    assert _score(lm, prefix, gen, 1.0) <= ranked[0][0]


def test_beam_size_one_is_greedy_decoding() -> None:
    lm = HashLM(6, 11, None, 0.0)
    seq = torch.tensor([0, 4])
    out = beam_search(lm, seq, beam_size=1, max_new_tokens=6)
    for _ in range(6):
        nxt = sample_next_token(lm(seq[None]), do_sample=False)
        seq = torch.cat([seq, nxt])
    assert torch.equal(out, seq)


def test_early_stop_happens_and_keeps_the_exact_answer() -> None:
    # eos がほぼ確実に出るモデル: 1 ステップ目で完成した仮説に、生きて
    # いるビームの上限が届かなくなるので、上限まで回さずに止まる。
    vocab, max_new = 4, 6
    lm = HashLM(vocab, 3, 0, 8.0)
    ranked = _exhaustive(lm, [1], max_new, 0, 1.0)
    out = beam_search(
        lm,
        torch.tensor([1]),
        beam_size=vocab**max_new,
        max_new_tokens=max_new,
        eos_id=0,
    )
    assert out.tolist() == [1, *ranked[0][1]]
    assert lm.calls < max_new


class TableLM(HashLM):
    """一部の文脈だけ確率を手で決め、残りは HashLM に任せるモデル。"""

    def __init__(self, table: dict[tuple[int, ...], list[float]]) -> None:
        super().__init__(vocab=3, seed=0, eos_id=0, eos_bias=0.0)
        for seq, probs in table.items():
            self._cache[seq] = torch.tensor(
                probs, dtype=torch.float64
            ).log()


def test_negative_length_penalty_bound_uses_the_shortest_length() -> None:
    # length_penalty < 0 では長いほど不利なので、生きたビームの上限は
    # 「次の 1 トークンで完成した場合」で見積もる必要がある。最大長で
    # 見積もると上限を低く見すぎ、1 ステップ目で止まって [eos] を返す。
    lm = TableLM({(1,): [0.3, 0.65, 0.05], (1, 1): [0.99, 0.005, 0.005]})
    ranked = _exhaustive(lm, [1], 4, 0, -1.0)
    assert ranked[0][1] == (1, 0)
    out = beam_search(
        lm,
        torch.tensor([1]),
        beam_size=3**4,
        max_new_tokens=4,
        eos_id=0,
        length_penalty=-1.0,
    )
    assert out.tolist() == [1, 1, 0]


def test_zero_new_tokens_returns_prefix() -> None:
    prefix = torch.tensor([3, 1])
    out = beam_search(
        HashLM(4, 0, None, 0.0), prefix, beam_size=2, max_new_tokens=0
    )
    assert torch.equal(out, prefix)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"beam_size": 0},
        {"max_new_tokens": -1},
        {"eos_id": 4},
        {"prefix": torch.tensor([[1, 2]])},
        {"step_fn": lambda b: torch.zeros(b.shape[0] + 1, 4)},
        {"step_fn": lambda b: torch.zeros(b.shape[0], 1, 4)},
    ],
)
def test_beam_search_bad_arguments(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "step_fn": HashLM(4, 0, None, 0.0),
        "prefix": torch.tensor([1]),
        "beam_size": 2,
        "max_new_tokens": 3,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match="ください"):
        beam_search(**args)  # type: ignore[arg-type]


# ------------------------------------------------- 左パディングのバッチ


def _varied_gpt(seed: int = 0) -> GPT:
    """出力が偏りすぎない小さな GPT（初期値のままだと分布がほぼ一様）。"""
    torch.manual_seed(seed)
    config = GPTConfig(
        vocab_size=40, block_size=48, n_layers=2, n_heads=2, d_model=32
    )
    model = GPT(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model


_PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [3], [12, 13, 14], [1, 2]]


def test_left_pad_puts_real_tokens_at_the_right_end() -> None:
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[True, True, True], [False, False, True]]


def test_position_ids_count_only_real_tokens() -> None:
    _, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert position_ids(mask).tolist() == [[0, 1, 2], [0, 0, 0]]


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_left_padded_batch_matches_one_by_one(seed: int) -> None:
    model = _varied_gpt(seed)
    batch = generate_left_padded(model, _PROMPTS, 12, pad_id=0)
    for prompt, row in zip(_PROMPTS, batch, strict=True):
        alone = model.generate(torch.tensor([prompt]), 12)[0].tolist()
        assert row == alone
    # 生成した部分が単調でない（比べる意味のある）ことも確かめる
    assert len({tuple(r[-12:]) for r in batch}) > 1


def test_left_padded_logits_match_one_by_one() -> None:
    model = _varied_gpt()
    ids, mask = left_pad(_PROMPTS, pad_id=0)
    caches = [KVCache() for _ in model.blocks]
    with torch.no_grad():
        batch = gen_module._forward_padded(
            model, ids, position_ids(mask), mask, caches
        )[:, -1]
        for row, prompt in enumerate(_PROMPTS):
            alone = model(torch.tensor([prompt]))[0, -1]
            torch.testing.assert_close(batch[row], alone)


def test_without_position_shift_a_padded_row_differs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """わざと壊した版: 位置をずらさないと、パディングした行が変わる。"""
    model = _varied_gpt()
    right = generate_left_padded(model, _PROMPTS, 12, pad_id=0)

    def naive(mask: Tensor) -> Tensor:
        return torch.arange(mask.size(1)).expand_as(mask)

    monkeypatch.setattr(gen_module, "position_ids", naive)
    broken = generate_left_padded(model, _PROMPTS, 12, pad_id=0)
    assert broken[0] == right[0]  # 最長の行はパディングが無いので同じ
    assert broken[1:] != right[1:]


def test_without_padding_mask_the_logits_differ() -> None:
    """わざと壊した版: パディングを隠さないと、短い行のロジットが変わる。"""
    model = _varied_gpt()
    ids, mask = left_pad(_PROMPTS, pad_id=0)
    with torch.no_grad():
        args = (model, ids, position_ids(mask))
        good = gen_module._forward_padded(
            *args, mask, [KVCache() for _ in model.blocks]
        )[:, -1]
        bad = gen_module._forward_padded(
            *args,
            torch.ones_like(mask),
            [KVCache() for _ in model.blocks],
        )[:, -1]
    torch.testing.assert_close(good[0], bad[0])
    assert not torch.allclose(good[1], bad[1], atol=1e-3)


def test_left_padded_eos_fills_the_rest() -> None:
    model = _varied_gpt()
    free = generate_left_padded(model, _PROMPTS, 12, pad_id=0)
    eos = free[0][len(_PROMPTS[0])]  # 最初の行が最初に出すトークン
    rows = generate_left_padded(model, _PROMPTS, 12, pad_id=0, eos_id=eos)
    first = rows[0][len(_PROMPTS[0]) :]
    assert first[0] == eos and set(first) == {eos}


def test_left_pad_rejects_empty_prompts() -> None:
    with pytest.raises(ValueError, match="1 トークン以上"):
        left_pad([[1], []], pad_id=0)


def test_left_padded_rejects_a_batch_longer_than_the_block() -> None:
    model = _varied_gpt()  # block_size=48、最長のプロンプトは 7
    generate_left_padded(model, _PROMPTS, 41, pad_id=0)  # 7 + 41 = 48
    with pytest.raises(ValueError, match="系列長 49 が最大長 48"):
        generate_left_padded(model, _PROMPTS, 42, pad_id=0)
