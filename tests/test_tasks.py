"""tasks（課題のデータ）のテスト。

正解の確かめには、minilang とは別の実装（Python の eval、sorted、
スライス）と、minilang の別の経路（RPN をスタックマシンで実行）を使う。
"""

from __future__ import annotations

import ast
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from easy_transformer.minilang import (
    EvalError,
    depth,
    evaluate,
    parse,
    parse_expr,
    run_rpn,
)
from easy_transformer.tasks import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    TASKS,
    Pair,
    PairDataset,
    Splits,
    Task,
    acceptance_rate,
    collate,
    make_batch,
    make_program_splits,
    make_splits,
    make_vocab,
    random_sequence,
    solve_sort,
    split_programs,
    to_corpus,
)

SEQ_TASKS = ["copy", "reverse", "sort"]
EXPR_TASKS = ["rpn", "eval"]
MAX_LEVEL = {"copy": 6, "reverse": 6, "sort": 6, "rpn": 3, "eval": 3}


def small_splits(name: str, seed: int = 0) -> Splits:
    return make_splits(
        name,
        seed=seed,
        n_train=300,
        n_valid=50,
        n_test=50,
        n_general=50,
        max_level=MAX_LEVEL[name],
        max_len=40,
    )


def all_pairs(s: Splits) -> list[Pair]:
    return s.train + s.valid + s.test + s.general


def level(name: str, src: str) -> int:
    return depth(parse_expr(src)) if name in EXPR_TASKS else len(src)


# --- 決定性と分割 ------------------------------------------------------


@pytest.mark.parametrize("name", list(TASKS))
def test_deterministic(name: str) -> None:
    assert small_splits(name, seed=1) == small_splits(name, seed=1)
    assert small_splits(name, seed=1) != small_splits(name, seed=2)


@pytest.mark.parametrize("name", list(TASKS))
def test_sizes_and_no_overlap(name: str) -> None:
    s = small_splits(name)
    splits = [s.train, s.valid, s.test, s.general]
    assert [len(p) for p in splits] == [300, 50, 50, 50]
    inputs = [src for split in splits for src, _ in split]
    # 分割の中でも間でも入力は重複しない
    assert len(set(inputs)) == len(inputs)


@pytest.mark.parametrize("name", list(TASKS))
def test_general_is_harder_than_train(name: str) -> None:
    s = small_splits(name)
    in_dist = s.train + s.valid + s.test
    top = max(level(name, src) for src, _ in in_dist)
    assert top <= MAX_LEVEL[name]
    assert min(level(name, src) for src, _ in s.general) > top
    assert max(level(name, src) for src, _ in s.general) <= top + 2


@pytest.mark.parametrize("name", list(TASKS))
def test_max_len(name: str) -> None:
    for src, tgt in all_pairs(small_splits(name)):
        assert 1 <= len(src) <= 40
        assert len(tgt) <= 40


def test_too_small_space_raises() -> None:
    # 長さ 1 の数字列は 10 通りしかない
    with pytest.raises(ValueError, match="集められません"):
        make_splits(
            "copy", seed=0, n_train=11, n_valid=0, n_test=0, max_level=1
        )


# --- 正解が正しいこと ----------------------------------------------------


def test_sequence_answers() -> None:
    for src, tgt in all_pairs(small_splits("copy")):
        assert tgt == src
    for src, tgt in all_pairs(small_splits("reverse")):
        assert tgt == "".join(reversed(src))
    for src, tgt in all_pairs(small_splits("sort")):
        assert list(tgt) == sorted(src)
        assert set(src) <= set("0123456789")


def test_rpn_answer_agrees_with_evaluation() -> None:
    rng = random.Random(0)
    for src, tgt in all_pairs(small_splits("rpn")):
        env = {name: rng.randint(-9, 9) for name in "xyz"}
        try:
            expected: int | str = evaluate(parse_expr(src), env)
        except EvalError:
            expected = "error"
        try:
            got: int | str = run_rpn(tgt.split(" "), env)
        except EvalError:
            got = "error"
        assert got == expected


def test_eval_answer_agrees_with_python() -> None:
    for src, tgt in all_pairs(small_splits("eval")):
        # minilang の / は Python の //（床関数）と同じ規則
        tree = ast.parse(src.replace("/", "//"), mode="eval")
        code = compile(tree, "<eval>", "eval")
        assert int(tgt) == eval(code, {"__builtins__": {}})


def test_custom_task() -> None:
    task = Task(
        "sort-symbols",
        lambda rng, n: random_sequence(rng, n, alphabet="+-*/"),
        solve_sort,
    )
    s = make_splits(
        task, seed=0, n_train=20, n_valid=5, n_test=5, max_level=5
    )
    for src, tgt in s.train:
        assert set(src) <= set("+-*/")
        assert list(tgt) == sorted(src)


# --- 語彙とテンソル化 ---------------------------------------------------


VOCAB = make_vocab(["0123456789+-*/()~ xyz"])


@settings(deadline=None)
@given(st.text(alphabet="0123456789+-*/()~ xyz"))
def test_vocab_roundtrip(text: str) -> None:
    ids = VOCAB.encode(text)
    assert all(i not in (PAD_ID, BOS_ID, EOS_ID) for i in ids)
    assert VOCAB.decode(ids) == text
    padded = [BOS_ID, *ids, EOS_ID, PAD_ID, PAD_ID]
    assert VOCAB.decode(padded, skip_special_tokens=True) == text


def test_vocab_is_deterministic_and_rejects_unknown() -> None:
    assert make_vocab(["ba"]).id_to_token == make_vocab(["ab"]).id_to_token
    assert make_vocab(["ab"]).id_to_token == [
        "<pad>",
        "<bos>",
        "<eos>",
        "a",
        "b",
    ]
    assert VOCAB.special_tokens == {
        "<pad>": PAD_ID,
        "<bos>": BOS_ID,
        "<eos>": EOS_ID,
    }
    with pytest.raises(ValueError, match="'=' は語彙にありません"):
        VOCAB.encode("x = 1")


@pytest.mark.parametrize("name", list(TASKS))
def test_splits_vocab_covers_everything(name: str) -> None:
    s = small_splits(name)
    vocab = s.vocab()
    for src, tgt in all_pairs(s):
        assert vocab.decode(vocab.encode(src)) == src
        assert vocab.decode(vocab.encode(tgt)) == tgt


def test_batch_shapes_and_padding() -> None:
    pairs = [("1+2", "3"), ("(4-5)*6", "-6"), ("7", "7")]
    vocab = make_vocab(t for pair in pairs for t in pair)
    batch = make_batch(pairs, vocab)
    assert batch.src.shape == (3, 7)
    assert batch.tgt.shape == (3, 4)  # <bos> - 6 <eos>
    assert batch.src.dtype == batch.tgt.dtype == torch.int64
    for row, (src, tgt) in enumerate(pairs):
        decoded = [
            vocab.decode(ids.tolist(), skip_special_tokens=True)
            for ids in (batch.src[row], batch.tgt[row])
        ]
        assert decoded == [src, tgt]
        assert batch.tgt[row, 0] == BOS_ID
        n = len(tgt)
        assert batch.tgt[row, n + 1] == EOS_ID
        assert (batch.tgt[row, n + 2 :] == PAD_ID).all()
        assert (batch.src[row, len(src) :] == PAD_ID).all()


def test_dataloader() -> None:
    s = small_splits("rpn")
    dataset = PairDataset(s.train, s.vocab())
    loader = DataLoader(dataset, batch_size=32, collate_fn=collate)
    batches = list(loader)
    assert sum(len(b.src) for b in batches) == len(s.train)
    first = batches[0]
    decoded = s.vocab().decode(
        first.tgt[0].tolist(), skip_special_tokens=True
    )
    assert decoded == s.train[0][1]


# --- 言語モデルの課題 ---------------------------------------------------


def program_splits(seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    s = make_program_splits(seed=seed, n_train=300, n_valid=50, n_test=50)
    return s.train, s.valid, s.test


def test_program_splits() -> None:
    train, valid, test = program_splits()
    assert program_splits() == (train, valid, test)
    assert program_splits(seed=1) != (train, valid, test)
    everything = train + valid + test
    assert len(set(everything)) == len(everything) == 400
    for text in everything:
        assert "\n" not in text
        assert len(text) <= 64
        evaluate(parse(text))  # 評価まで成功する


def test_corpus_and_acceptance() -> None:
    train, _, _ = program_splits()
    corpus = to_corpus(train)
    assert split_programs(corpus) == train
    assert acceptance_rate(split_programs(corpus)) == 1.0


@pytest.mark.parametrize(
    ("texts", "rate"),
    [
        (["x = 1; x + 2", "1 +", "(1 + 2", "3"], 0.5),
        (["", "x = ", "1 $ 2", "x = y = 1"], 0.0),
        # 未定義の変数や 0 除算は構文の問題ではないので受理する
        (["y + 1", "1 / 0"], 1.0),
    ],
)
def test_acceptance_rate(texts: list[str], rate: float) -> None:
    assert acceptance_rate(texts) == rate


def test_acceptance_rate_of_truncated_programs() -> None:
    # 正しいプログラムを演算子の直後で切ると、必ず構文エラーになる
    train, _, _ = program_splits()
    cut = [p[: p.index(" + ") + 3] for p in train if " + " in p]
    assert cut
    assert acceptance_rate(cut) == 0.0
    assert acceptance_rate(cut + train[: len(cut)]) == 0.5


def test_split_programs_drops_incomplete_line() -> None:
    text = "x = 1; x\n2 * 3\ny = (4"
    assert split_programs(text) == ["x = 1; x", "2 * 3"]
    assert split_programs(text, keep_incomplete=True)[-1] == "y = (4"
    assert split_programs("") == []
    with pytest.raises(ValueError):
        acceptance_rate([])


@settings(deadline=None, max_examples=20)
@given(st.integers(0, 2**32 - 1))
def test_make_splits_any_seed(seed: int) -> None:
    s = make_splits(
        "eval",
        seed=seed,
        n_train=30,
        n_valid=5,
        n_test=5,
        n_general=5,
        max_level=2,
    )
    inputs = [src for src, _ in all_pairs(s)]
    assert len(set(inputs)) == len(inputs) == 45
