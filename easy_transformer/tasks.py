"""Transformer に学ばせる課題のデータ（系列変換と言語モデル）。

系列変換（エンコーダ・デコーダ用）の課題は 5 つある。

- ``copy``: 数字の列をそのまま写す（``"3141"`` → ``"3141"``）
- ``reverse``: 数字の列を逆順にする（``"3141"`` → ``"1413"``）
- ``sort``: 数字の列を整列する（``"3141"`` → ``"1134"``）
- ``rpn``: 中置記法の式を逆ポーランド記法にコンパイルする
  （``"(x-2)*3"`` → ``"x 2 - 3 *"``）
- ``eval``: 式の値を求める（``"(7-2)*3"`` → ``"15"``）

どの課題も「入力を乱数で作る関数」と「入力から正解を求める関数」の
組で、正解は minilang（字句解析・構文解析・コード生成・評価）が
決定的に求める。入力の難しさを表す整数を **レベル** と呼び、系列の
課題では列の長さ、式の課題では式の木の深さ（minilang.depth）とする。

言語モデル（GPT 用）の課題は、minilang の確率文法で作ったプログラムを
**1 行に 1 つ** 並べたコーパスで、文は ``"; "`` で区切る。
生成したテキストを行に分けて、パーサが受理する割合を測る。

すべて乱数のシードから決定的に作る。
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeAlias

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from easy_transformer.minilang import (
    MiniLangError,
    evaluate,
    parse,
    parse_expr,
    random_expr,
    random_program,
    to_rpn,
    unparse,
)
from easy_transformer.tokenizer import BOS, EOS, PAD, CharTokenizer

# (入力の文字列, 出力の文字列)
Pair: TypeAlias = tuple[str, str]

DIGITS = "0123456789"
# rpn の課題で使う変数名。eval の課題は変数を使わない。
RPN_NAMES = ("x", "y", "z")
# 式の葉を選ぶ確率。深い木でも入力が長くなりすぎない値にした。
EXPR_LEAF_PROB = 0.5

# ---------------------------------------------------------------------
# 入力の作り方（level: 系列の長さ、または式の深さ）
# ---------------------------------------------------------------------


def random_sequence(
    rng: random.Random, level: int, alphabet: str = DIGITS
) -> str:
    """alphabet の文字を level 個並べた列を作る。"""
    return "".join(rng.choice(alphabet) for _ in range(level))


def random_expr_source(
    rng: random.Random, level: int, names: Sequence[str] = ()
) -> str:
    """深さがちょうど level の式を、空白なしのソースとして作る。"""
    expr = random_expr(
        rng,
        level,
        min_depth=level,
        names=names,
        leaf_prob=EXPR_LEAF_PROB,
    )
    return unparse(expr, compact=True)


# ---------------------------------------------------------------------
# 正解の求め方
# ---------------------------------------------------------------------


def solve_copy(src: str) -> str:
    return src


def solve_reverse(src: str) -> str:
    return src[::-1]


def solve_sort(src: str) -> str:
    return "".join(sorted(src))


def solve_rpn(src: str) -> str:
    """式を逆ポーランド記法にコンパイルする。命令は空白で区切る。"""
    # 数が 2 桁以上になると "12 3" と "1 23" を区別できなくなるので、
    # 入力と違って空白を省けない。
    return " ".join(to_rpn(parse_expr(src)))


def solve_eval(src: str) -> str:
    """式の値を 10 進の文字列で返す。0 除算なら EvalError。"""
    return str(evaluate(parse_expr(src)))


# ---------------------------------------------------------------------
# 課題 = 入力の作り方 + 正解の求め方
# ---------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """系列変換の課題。

    make_input(rng, level) が入力を作り、solve(入力) が正解を返す。
    solve が MiniLangError を送出した入力（0 除算の式など）は
    データに入れない。別の文字集合で整列させたいときなどは、
    ``Task("sort", partial(random_sequence, alphabet="+-*/"),
    solve_sort)`` のように作る。
    """

    name: str
    make_input: Callable[[random.Random, int], str]
    solve: Callable[[str], str]


TASKS: dict[str, Task] = {
    "copy": Task("copy", random_sequence, solve_copy),
    "reverse": Task("reverse", random_sequence, solve_reverse),
    "sort": Task("sort", random_sequence, solve_sort),
    "rpn": Task(
        "rpn", partial(random_expr_source, names=RPN_NAMES), solve_rpn
    ),
    "eval": Task("eval", random_expr_source, solve_eval),
}


# ---------------------------------------------------------------------
# 重複のない分割
# ---------------------------------------------------------------------


def _draw_unique(
    draw: Callable[[], str | None], n: int, seen: set[str]
) -> list[str]:
    """draw() が返す文字列のうち seen にないものを n 個集める。

    集めたものは seen に加えるので、同じ seen で続けて呼べば、
    呼び出しの間で重複しない。draw() が None を返したら捨てる。
    """
    found: list[str] = []
    # 入力の空間が小さいと永久に集まらないので、試す回数を限る
    for _ in range(100 * n + 1000):
        if len(found) == n:
            break
        s = draw()
        if s is not None and s not in seen:
            seen.add(s)
            found.append(s)
    if len(found) < n:
        raise ValueError(
            f"重複しない例を {n} 個集められませんでした"
            f"（{len(found)} 個）。レベルか max_len を大きくしてください"
        )
    return found


@dataclass(frozen=True)
class Splits:
    """学習・検証・テストと汎化テストの (入力, 出力) の組。

    4 つの間で入力の文字列は重複しない。general（汎化テスト）は
    学習よりレベルが高い（長い列、深い式）入力だけを集めたもの。
    """

    train: list[Pair]
    valid: list[Pair]
    test: list[Pair]
    general: list[Pair]

    def vocab(self) -> CharTokenizer:
        """4 つの分割に現れるすべての文字からなる語彙。"""
        return make_vocab(
            text
            for split in (self.train, self.valid, self.test, self.general)
            for pair in split
            for text in pair
        )


def make_splits(
    task: str | Task,
    *,
    seed: int,
    n_train: int,
    n_valid: int,
    n_test: int,
    max_level: int,
    n_general: int = 0,
    general_levels: int = 2,
    max_len: int = 64,
) -> Splits:
    """課題のデータを作って分割する。

    学習・検証・テストの入力はレベル 1 から max_level まで、汎化テスト
    の入力は max_level + 1 から max_level + general_levels までの
    レベルを等確率で選んで作る。入力か出力が max_len 文字を超える例は
    捨てる（そのため深いレベルでは細長い式に偏る）。
    """
    if isinstance(task, str):
        task = TASKS[task]
    rng = random.Random(seed)
    solve = task.solve

    def draw(levels: range) -> str | None:
        src = task.make_input(rng, rng.choice(levels))
        try:
            tgt = solve(src)
        except MiniLangError:
            return None
        return src if max(len(src), len(tgt)) <= max_len else None

    seen: set[str] = set()
    n_pool = n_train + n_valid + n_test
    pool = _draw_unique(
        partial(draw, range(1, max_level + 1)), n_pool, seen
    )
    hard = range(max_level + 1, max_level + general_levels + 1)
    general = _draw_unique(partial(draw, hard), n_general, seen)
    # pool は乱数で作った順に並んでいるので、先頭から切ればよい
    pairs = [(src, solve(src)) for src in pool]
    return Splits(
        train=pairs[:n_train],
        valid=pairs[n_train : n_train + n_valid],
        test=pairs[n_train + n_valid :],
        general=[(src, solve(src)) for src in general],
    )


# ---------------------------------------------------------------------
# 文字単位の語彙
# ---------------------------------------------------------------------

# 特殊トークンを先頭に置くので、ID はどの語彙でも同じになる。
# 系列変換では語彙にない文字は出てこないので、<unk> は持たない
TASK_SPECIAL_TOKENS = (PAD, BOS, EOS)
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2


def make_vocab(texts: Iterable[str]) -> CharTokenizer:
    """テキストに現れる文字すべてからなる、課題の文字単位の語彙。

    ID 0〜2 は ``<pad>``・``<bos>``・``<eos>``、その後に文字が
    コードポイント順に並ぶ。語彙にない文字の encode は ValueError。
    """
    return CharTokenizer.from_chars(
        (c for text in texts for c in text), TASK_SPECIAL_TOKENS
    )


# ---------------------------------------------------------------------
# テンソル化（系列変換）
# ---------------------------------------------------------------------


class PairDataset(Dataset[tuple[Tensor, Tensor]]):
    """(入力, 出力) の組を (src, tgt) の ID のテンソルにする。

    src は入力の文字の ID だけ、tgt は ``<bos> 出力 <eos>`` の ID。
    デコーダの入力は tgt[:-1]、予測の正解は tgt[1:] になる。
    """

    def __init__(self, pairs: Sequence[Pair], vocab: CharTokenizer) -> None:
        self.pairs = list(pairs)
        self.vocab = vocab

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        src, tgt = self.pairs[i]
        src_ids = self.vocab.encode(src)
        tgt_ids = [BOS_ID, *self.vocab.encode(tgt), EOS_ID]
        return torch.tensor(src_ids), torch.tensor(tgt_ids)


@dataclass(frozen=True)
class Batch:
    """パディングしたミニバッチ。どちらも形は (バッチ, 長さ) の int64。"""

    src: Tensor
    tgt: Tensor


def collate(items: Sequence[tuple[Tensor, Tensor]]) -> Batch:
    """長さの違う例の後ろを <pad> で埋めて（右パディング）バッチにする。

    DataLoader の collate_fn にそのまま渡せる。
    """
    srcs, tgts = zip(*items, strict=True)
    return Batch(
        src=pad_sequence(
            list(srcs), batch_first=True, padding_value=PAD_ID
        ),
        tgt=pad_sequence(
            list(tgts), batch_first=True, padding_value=PAD_ID
        ),
    )


def make_batch(pairs: Sequence[Pair], vocab: CharTokenizer) -> Batch:
    """(入力, 出力) の組の列を 1 つのバッチにする。"""
    dataset = PairDataset(pairs, vocab)
    return collate([dataset[i] for i in range(len(dataset))])


# ---------------------------------------------------------------------
# 言語モデルの課題: minilang のプログラムのコーパス
# ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProgramSplits:
    """学習・検証・テストのプログラム。分割の間で重複しない。"""

    train: list[str]
    valid: list[str]
    test: list[str]


def make_program_splits(
    *,
    seed: int,
    n_train: int,
    n_valid: int,
    n_test: int = 0,
    max_statements: int = 3,
    max_depth: int = 2,
    max_len: int = 64,
    compact: bool = False,
) -> ProgramSplits:
    """確率文法でプログラムを作り、重複なく分割する。

    どのプログラムも 1 行（文は ``"; "`` で区切る）で、max_len 文字
    以下、しかも評価まで成功する（0 除算を含むものは捨てる）。
    """
    rng = random.Random(seed)

    def draw() -> str | None:
        program = random_program(
            rng, max_statements=max_statements, max_depth=max_depth
        )
        try:
            evaluate(program)
        except MiniLangError:
            return None
        text = unparse(program, compact=compact)
        return text if len(text) <= max_len else None

    seen: set[str] = set()
    return ProgramSplits(
        train=_draw_unique(draw, n_train, seen),
        valid=_draw_unique(draw, n_valid, seen),
        test=_draw_unique(draw, n_test, seen),
    )


def to_corpus(programs: Iterable[str]) -> str:
    """プログラムを 1 行に 1 つずつ並べたコーパスにする。"""
    return "".join(f"{p}\n" for p in programs)


def split_programs(
    text: str, *, keep_incomplete: bool = False
) -> list[str]:
    """生成したテキストを、行ごとのプログラムに分ける。

    最後の改行より後ろは、生成が長さの上限で打ち切られた書きかけの
    行なので、keep_incomplete=True でない限り捨てる。
    """
    *lines, rest = text.split("\n")
    if keep_incomplete and rest:
        lines.append(rest)
    return lines


def acceptance_rate(texts: Iterable[str]) -> float:
    """各テキストを 1 つのプログラムとしてパーサにかけ、受理した割合。

    字句解析か構文解析でエラーになったものを「受理しない」と数える
    （未定義の変数や 0 除算は問わない）。空行も受理しない。
    生成したテキストは split_programs で行に分けてから渡す。
    """
    results = [accepts(t) for t in texts]
    if not results:
        raise ValueError("テキストが 1 つもありません")
    return sum(results) / len(results)


def accepts(text: str) -> bool:
    """text を 1 つのプログラムとしてパーサが受理するか。

    字句解析か構文解析でエラーになれば False（未定義の変数や 0 除算は
    問わない）。
    """
    try:
        parse(text)
    except MiniLangError:
        return False
    return True
