"""第2章: 構文木の「親」を、注意の重みで指せるか。

minilang の式（Python の式としても読める）を Python の ast で構文解析し、
各トークンの親（そのトークンを子に持つ演算子のトークン）を正解にする。
注意のヘッドを 1 つだけ学習させ、各トークンの注意の重みが親に集まるかを
調べる。
"""

from __future__ import annotations

import ast
import random
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from easy_transformer import minilang
from easy_transformer.attention import scaled_dot_product_attention
from easy_transformer.tasks import RPN_NAMES, random_expr_source

VOCAB = "0123456789xyz+-*/()"
MAX_LEN = 64
MAX_PAREN_DEPTH = 16


def ast_heads(src: str) -> tuple[list[str], list[int | None]]:
    """式をトークンに分け、各トークンの親のトークンの位置を返す。

    親は、そのトークンを子に持つ構文木の節の「目印」のトークン
    （二項演算なら演算子、単項マイナスなら -）。根は自分自身を指す。
    括弧は構文木に現れないので None にする。
    """
    tokens = [t for t in minilang.tokenize(src) if t.kind != minilang.EOF]
    index = {t.pos.offset: i for i, t in enumerate(tokens)}
    heads: list[int | None] = [None] * len(tokens)

    def anchor(node: ast.expr) -> int:
        if isinstance(node, ast.BinOp):
            # 演算子は左辺の直後にある（閉じ括弧を飛ばす）
            j = node.left.end_col_offset or 0
            while src[j] == ")":
                j += 1
            return index[j]
        return index[node.col_offset]

    def visit(node: ast.expr, parent: int | None) -> None:
        me = anchor(node)
        heads[me] = me if parent is None else parent
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                visit(child, me)

    visit(ast.parse(src, mode="eval").body, None)
    return [t.text for t in tokens], heads


def paren_depths(tokens: list[str]) -> list[int]:
    """各トークンが何重の括弧の中にあるか（字句解析器でも数えられる）。"""
    depth, out = 0, []
    for t in tokens:
        if t == ")":
            depth -= 1
        out.append(depth)
        if t == "(":
            depth += 1
    return out


class Batch(NamedTuple):
    ids: Tensor  # (batch, seq) トークンの ID
    depths: Tensor  # (batch, seq) 括弧の深さ
    heads: Tensor  # (batch, seq) 親の位置（無ければ -1）
    keys: Tensor  # (batch, seq) 本物のトークンなら True（詰め物は False）


def encode(srcs: list[str]) -> Batch:
    """式の列を、長さをそろえたテンソルにする。"""
    parsed = [ast_heads(s) for s in srcs]
    seq = max(len(tokens) for tokens, _ in parsed)
    ids = torch.zeros(len(srcs), seq, dtype=torch.long)
    depths = torch.zeros_like(ids)
    heads = torch.full_like(ids, -1)
    keys = torch.zeros(len(srcs), seq, dtype=torch.bool)
    for b, (tokens, hs) in enumerate(parsed):
        n = len(tokens)
        ids[b, :n] = torch.tensor([VOCAB.index(t) for t in tokens])
        depths[b, :n] = torch.tensor(paren_depths(tokens))
        heads[b, :n] = torch.tensor([-1 if h is None else h for h in hs])
        keys[b, :n] = True
    return Batch(ids, depths, heads, keys)


class ParentHead(nn.Module):
    """注意のヘッド 1 つ。トークン・位置・括弧の深さから q と k を作る。"""

    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.token = nn.Embedding(len(VOCAB), d)
        self.position = nn.Embedding(MAX_LEN, d)
        self.depth = nn.Embedding(MAX_PAREN_DEPTH, d)
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)

    def forward(self, batch: Batch) -> Tensor:
        """注意の重み (batch, seq, seq) を返す。行がクエリ、列がキー。"""
        pos = torch.arange(batch.ids.size(1))
        h = self.token(batch.ids) + self.position(pos)
        h = h + self.depth(batch.depths)
        mask = batch.keys[:, None, :]  # 詰め物のキーは見ない
        _, weights = scaled_dot_product_attention(
            self.q(h), self.k(h), h, mask
        )
        return weights


def random_exprs(n: int, seed: int, max_level: int = 3) -> list[str]:
    """深さ 1〜max_level の式を n 個作る（変数は x, y, z）。"""
    rng = random.Random(seed)
    exprs: list[str] = []
    while len(exprs) < n:
        src = random_expr_source(rng, rng.randint(1, max_level), RPN_NAMES)
        if len(src) <= MAX_LEN:  # 位置の埋め込みの表に収まる長さだけ
            exprs.append(src)
    return exprs


def parent_loss(weights: Tensor, heads: Tensor) -> Tensor:
    """正解の親の重みの対数を平均し、符号を変える（交差エントロピー）。"""
    target = heads >= 0
    log_w = weights[target].clamp_min(1e-9).log()
    return F.nll_loss(log_w, heads[target])


def train_parent_head(
    srcs: list[str], steps: int = 150, seed: int = 0
) -> ParentHead:
    """srcs の全体を 1 つのバッチにして、steps 回だけ重みを更新する。"""
    torch.manual_seed(seed)
    model = ParentHead()
    batch = encode(srcs)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = parent_loss(model(batch), batch.heads)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


@torch.no_grad()
def parent_accuracy(model: ParentHead, srcs: list[str]) -> float:
    """重みが最大のキーが正解の親と一致したトークンの割合。"""
    batch = encode(srcs)
    guess = model(batch).argmax(dim=-1)
    target = batch.heads >= 0
    hits = (guess[target] == batch.heads[target]).float()
    return hits.mean().item()
