"""第16章 (3/3): 入力の字句から決まる制約で、出力の文字を絞って訳す。

逆ポーランド記法の出力では、値（数と変数）は入力と同じ順に並び、
演算子の数も入力と同じになる。これは構文解析をしなくても、字句の
列から分かる。``RPNConstraint`` は、その知識だけを使って、次に
出してよい文字を 1 文字ずつ絞る。決めるのは「次は値か演算子か、
どの演算子か」だけで、それはモデルに任せる。

>>> import importlib
>>> c = importlib.import_module("listings.ch16.03_constrained")
>>> con = c.RPNConstraint("x*(y+3)-12")
>>> sorted(con.allowed())  # 最初は最初の値しか出せない
['x']
>>> for ch in "x y":
...     con.advance(ch)
>>> sorted(con.allowed())  # y の後は空白だけ
[' ']
>>> con.advance(" ")
>>> sorted(con.allowed())  # 次の値 3 か、残っている演算子
['*', '+', '-', '3']
>>> for ch in "3 + * 1":
...     con.advance(ch)
>>> sorted(con.allowed())  # 12 の途中
['2']
>>> for ch in "2 -":
...     con.advance(ch)
>>> con.allowed()  # 全部出し終えたら <eos> だけ
{None}
"""

from collections import Counter
from collections.abc import Sequence

import torch
from torch import Tensor

from easy_transformer.attention import padding_mask
from easy_transformer.minilang import NAME, NEG, NUM, tokenize
from easy_transformer.tasks import BOS_ID, EOS_ID, PAD_ID
from easy_transformer.tokenizer import Tokenizer
from easy_transformer.transformer import Transformer

# 単項マイナスの前に来うるもの（式の始まり、開き括弧、演算子）
_UNARY_BEFORE = {None, "(", "+", "-", "*", "/"}


class RPNConstraint:
    """1 つの入力について、出力の次の文字の候補を絞る状態機械。

    状態は、残りの値の列、使える二項演算子の残りの数、単項マイナス
    の残りの数、スタックの高さ、書きかけの値の残りの文字。
    ``allowed()`` が返す集合の None は ``<eos>`` を表す。
    """

    def __init__(self, src: str) -> None:
        self.values: list[str] = []
        self.binary: Counter[str] = Counter()
        self.neg = 0
        prev: str | None = None
        for tok in tokenize(src)[:-1]:  # 最後の EOF は除く
            if tok.kind in (NUM, NAME):
                self.values.append(
                    str(int(tok.text)) if tok.kind == NUM else tok.text
                )
            elif tok.text == "-" and prev in _UNARY_BEFORE:
                self.neg += 1
            elif tok.text in "+-*/":
                self.binary[tok.text] += 1
            prev = tok.text if tok.kind not in (NUM, NAME) else "v"
        self.height = 0
        self.rest = ""  # 書きかけの値の、まだ出していない文字
        self.need_sep = False  # 命令を 1 つ書き終え、区切りを待つ

    def _done(self) -> bool:
        return (
            not self.values
            and not +self.binary
            and self.neg == 0
            and self.height == 1
        )

    def allowed(self) -> set[str | None]:
        if self.rest:
            return {self.rest[0]}
        if self.need_sep:
            return {None} if self._done() else {" "}
        out: set[str | None] = set()
        if self.values:
            out.add(self.values[0][0])
        if self.height >= 2:
            out.update(op for op, n in self.binary.items() if n > 0)
        if self.height >= 1 and self.neg > 0:
            out.add(NEG)
        return out

    def advance(self, ch: str) -> None:
        if ch not in self.allowed():
            raise ValueError(f"{ch!r} は今は出せません")
        if self.rest:
            self.rest = self.rest[1:]
            self.need_sep = not self.rest
        elif self.need_sep:
            self.need_sep = False
        elif self.values and ch == self.values[0][0]:
            value = self.values.pop(0)
            self.height += 1
            self.rest = value[1:]
            self.need_sep = not self.rest
        elif ch == NEG:
            self.neg -= 1
            self.need_sep = True
        else:
            self.binary[ch] -= 1
            self.height -= 1
            self.need_sep = True


@torch.no_grad()
def constrained_predict(
    model: Transformer,
    sources: Sequence[str],
    vocab: Tokenizer,
    *,
    max_new_tokens: int,
) -> list[str]:
    """貪欲法で訳す。ただし各ステップで、制約の外の文字は選ばない。"""
    model.eval()
    ids = [vocab.encode(s) for s in sources]
    width = max(map(len, ids))
    src = torch.full((len(ids), width), PAD_ID)
    for i, row in enumerate(ids):
        src[i, : len(row)] = torch.tensor(row)
    mask = padding_mask(src, PAD_ID)
    memory = model.encode(src, mask)
    cons = [RPNConstraint(s) for s in sources]
    ys = torch.full((len(ids), 1), BOS_ID)
    outs = ["" for _ in sources]
    done = [False] * len(sources)
    for _ in range(max_new_tokens):
        logits: Tensor = model.decode(ys, memory, mask)[:, -1]
        allow = torch.zeros_like(logits, dtype=torch.bool)
        for i, con in enumerate(cons):
            if done[i]:
                allow[i, EOS_ID] = True
                continue
            for ch in con.allowed():
                allow[i, EOS_ID if ch is None else vocab.encode(ch)[0]] = (
                    True
                )
        next_id = logits.masked_fill(~allow, float("-inf")).argmax(-1)
        for i, con in enumerate(cons):
            if done[i] or next_id[i] == EOS_ID:
                done[i] = True
                continue
            ch = vocab.decode([int(next_id[i])])
            con.advance(ch)
            outs[i] += ch
        ys = torch.cat([ys, next_id[:, None]], dim=1)
        if all(done):
            break
    return outs
