"""ファインチューニング: 事前学習した GPT を分類に適応させる（第18章）。

上から、GPT に分類の頭を付けるクラス、層ごとの学習率のパラメータ
グループ、分類の課題（ミニ言語のプログラムが未定義の変数を使うか、
パーサが受理しないか）のデータ、短い学習ループと正解率、の順に並ぶ。
GPT そのもの（gpt.py）は変えず、外から包む。
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from easy_transformer.gpt import GPT
from easy_transformer.minilang import (
    NAME,
    EvalError,
    MiniLangError,
    evaluate,
    parse,
    tokenize,
)
from easy_transformer.tokenizer import CharTokenizer


class GPTClassifier(nn.Module):
    """GPT の最後の位置の隠れ状態から、列全体のクラスを当てる。

    GPT の出力層（語彙のロジット）の手前、最後の層正規化の出力を
    フックで受け取り、各列の最後のトークンの位置のベクトルに線形の
    頭を掛ける。因果マスクがあるので、列の全体を見ているのは最後の
    位置だけだからである。右側のパディングは、それより前の位置の
    計算に影響しない（後ろは見ないので）。
    """

    def __init__(self, gpt: GPT, n_classes: int) -> None:
        super().__init__()
        self.gpt = gpt
        self.head = nn.Linear(gpt.config.d_model, n_classes)
        self._hidden: Tensor | None = None
        gpt.norm.register_forward_hook(self._keep_hidden)

    def _keep_hidden(
        self, module: nn.Module, args: Any, out: Tensor
    ) -> None:
        self._hidden = out

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        """ids (batch, seq) と長さ (batch,) → ロジット (batch, クラス)。"""
        self.gpt(ids)  # 語彙のロジットは使わない（隠れ状態だけが要る）
        hidden = self._hidden
        assert hidden is not None
        last = hidden[torch.arange(len(ids)), lengths - 1]
        logits: Tensor = self.head(last)
        return logits


def layerwise_param_groups(
    model: GPTClassifier, lr: float, decay: float
) -> list[dict[str, Any]]:
    """出力に近い層ほど大きな学習率にした AdamW のパラメータグループ。

    頭と最後の層正規化が lr、その下の層が lr·decay、さらに下が
    lr·decay²、……、埋め込みが最も小さい（Howard & Ruder, 2018 の
    discriminative fine-tuning）。学習するパラメータ
    （requires_grad=True）をどれも 1 度ずつ、どこかのグループに入れる。
    """
    blocks = list(model.gpt.blocks)
    n = len(blocks)
    depth_of: dict[int, int] = {}  # id(パラメータ) → 出力からの深さ
    for p in model.head.parameters():
        depth_of[id(p)] = 0
    for p in model.gpt.norm.parameters():
        depth_of[id(p)] = 0
    for i, block in enumerate(blocks):
        for p in block.parameters():
            depth_of[id(p)] = n - i
    groups: dict[int, list[nn.Parameter]] = {}
    for p in model.parameters():  # 共有された重みは 1 度だけ返る
        if p.requires_grad:
            # 上のどれでもないもの（埋め込み）は一番深い
            groups.setdefault(depth_of.get(id(p), n + 1), []).append(p)
    return [
        {"params": params, "lr": lr * decay**depth}
        for depth, params in sorted(groups.items())
    ]


# ----------------------------------------------------------------------
# 分類の課題: 未定義の変数を使うか、パーサが受理しないか
# ----------------------------------------------------------------------


def uses_undefined_variable(src: str) -> bool | None:
    """src を評価して、未定義の変数で止まれば True、最後まで動けば False。

    ほかの理由（構文の誤り、0 による除算）で止まるものは None。
    """
    try:
        evaluate(parse(src))
    except EvalError as e:
        return True if "定義されていません" in str(e) else None
    except MiniLangError:
        return None
    return False


def replace_one_reference(
    src: str, rng: random.Random, names: Sequence[str] = ("x", "y", "z")
) -> str | None:
    """src の変数の参照 1 つ（代入の左辺でないもの）を別の名前に変える。

    参照が無ければ None。変えた先の名前がその位置で定義済みかどうかは
    問わない（それが分類の正解になる）。
    """
    tokens = tokenize(src)
    refs = [
        t
        for t, nxt in itertools.pairwise(tokens)
        if t.kind == NAME and nxt.kind != "="
    ]
    if not refs:
        return None
    tok = rng.choice(refs)
    new = rng.choice([n for n in names if n != tok.text])
    start = tok.pos.offset
    return src[:start] + new + src[start + len(tok.text) :]


@dataclass
class Example:
    """分類の例: プログラムと正解（0 か 1）。"""

    src: str
    label: int


def make_undefined_variable_examples(
    programs: Sequence[str], n: int, seed: int
) -> list[Example]:
    """programs から、正解が半々の n 個の例を作る。

    変数の参照を持つプログラムを、半分の確率でそのまま、残りの確率で
    参照を 1 つ別の名前に書き換えて使う。正解は uses_undefined_variable
    で機械的に決める（0 除算などで止まるものは捨てる）。足りなければ
    ValueError。
    """
    rng = random.Random(seed)
    per_class: dict[int, list[Example]] = {0: [], 1: []}
    for src in programs:
        new = replace_one_reference(src, rng)
        if new is None:
            continue
        if rng.random() < 0.5:
            new = src  # 参照を持つが、書き換えないもの
        label = uses_undefined_variable(new)
        if label is None or len(per_class[int(label)]) >= n // 2:
            continue
        per_class[int(label)].append(Example(new, int(label)))
        if sum(len(v) for v in per_class.values()) == n // 2 * 2:
            examples = per_class[0] + per_class[1]
            rng.shuffle(examples)
            return examples
    raise ValueError(f"プログラムが足りず、{n} 個の例を作れません。")


def delete_one_char(src: str, rng: random.Random) -> str:
    """src から、空白でない文字を 1 つ選んで消す。"""
    positions = [i for i, ch in enumerate(src) if ch != " "]
    i = rng.choice(positions)
    return src[:i] + src[i + 1 :]


def make_syntax_examples(
    programs: Sequence[str], n: int, seed: int
) -> list[Example]:
    """programs から「パーサが受理しないか」の正解が半々の n 個の例を作る。

    半分の確率でそのまま、残りの確率で文字を 1 つ消して使う。正解は
    パーサ（tasks.accepts と同じく parse が例外を出すか）で機械的に
    決め、受理しないなら 1。消しても受理されるもの（``12`` を ``1``
    にしたなど）は 0 になる。足りなければ ValueError。
    """
    rng = random.Random(seed)
    per_class: dict[int, list[Example]] = {0: [], 1: []}
    for src in programs:
        new = src if rng.random() < 0.5 else delete_one_char(src, rng)
        try:
            parse(new)
            label = 0
        except MiniLangError:
            label = 1
        if len(per_class[label]) < n // 2:
            per_class[label].append(Example(new, label))
        if sum(len(v) for v in per_class.values()) == n // 2 * 2:
            examples = per_class[0] + per_class[1]
            rng.shuffle(examples)
            return examples
    raise ValueError(f"プログラムが足りず、{n} 個の例を作れません。")


def encode_examples(
    examples: Sequence[Example], vocab: CharTokenizer
) -> tuple[Tensor, Tensor, Tensor]:
    """例を (ids (n, 最大長), 長さ (n,), 正解 (n,)) のテンソルにする。

    プログラムの後ろに改行は付けない。事前学習のコーパスでは改行の
    次に無関係な次のプログラムが来るので、改行の位置の隠れ状態は
    いまのプログラムのことを表すように学習されていないからである。
    右側を 0 で埋める。
    """
    rows = [vocab.encode(e.src) for e in examples]
    ids = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    lengths = torch.tensor([len(r) for r in rows])
    labels = torch.tensor([e.label for e in examples])
    return ids, lengths, labels


# ----------------------------------------------------------------------
# 学習と評価
# ----------------------------------------------------------------------


def train_classifier(
    model: GPTClassifier,
    data: tuple[Tensor, Tensor, Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    steps: int,
    batch_size: int,
    seed: int = 0,
) -> list[float]:
    """data から無作為に選んだバッチで steps 回更新し、損失の列を返す。"""
    ids, lengths, labels = data
    gen = torch.Generator().manual_seed(seed)
    model.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(
            len(ids), (min(batch_size, len(ids)),), generator=gen
        )
        width = int(lengths[idx].max())  # パディングだけの列は切り落とす
        logits = model(ids[idx, :width], lengths[idx])
        loss = F.cross_entropy(logits, labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def accuracy(
    model: GPTClassifier,
    data: tuple[Tensor, Tensor, Tensor],
    batch_size: int = 256,
) -> float:
    """data の正解率。"""
    ids, lengths, labels = data
    model.eval()
    correct = 0
    for s in range(0, len(ids), batch_size):
        logits = model(ids[s : s + batch_size], lengths[s : s + batch_size])
        correct += int(
            (logits.argmax(-1) == labels[s : s + batch_size]).sum()
        )
    return correct / len(ids)
