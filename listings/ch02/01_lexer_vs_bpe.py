"""第2章: 同じ Python のコードを、字句解析器とトークナイザにかけて比べる。

字句解析器は Python 標準の tokenize（規則で動く）、トークナイザは
easy_transformer のバイトレベル BPE（小さなコーパスから学習する）。
"""

from __future__ import annotations

import io
import tokenize

from easy_transformer.tokenizer import ByteLevelBPETokenizer

# BPE の学習に使う小さなコーパス。BPE はここに多く出てくる文字の並びを
# 1 トークンにまとめていく
CORPUS = """
def total_price(items):
    total = 0
    for item in items:
        total += item.price * item.count
    return total

def average(values):
    if not values:
        return 0
    return sum(values) / len(values)

def count_items(items):
    count = 0
    for item in items:
        count += item.count
    return count
"""

# 字句解析器の出力のうち、意味のある字句だけを残す（改行・字下げ・
# 終端の印は、ここでは並べて比べにくいので落とす）
_LAYOUT = {
    tokenize.NEWLINE,
    tokenize.NL,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
}


def lexemes(src: str) -> list[tuple[str, str]]:
    """字句解析器の出力を（種類の名前, 字句）の列で返す。"""
    readline = io.StringIO(src).readline
    return [
        (tokenize.tok_name[tok.type], tok.string)
        for tok in tokenize.generate_tokens(readline)
        if tok.type not in _LAYOUT
    ]


def train_bpe(vocab_size: int = 300) -> ByteLevelBPETokenizer:
    """CORPUS でバイトレベル BPE を学習する（256 個のバイト + マージ）。"""
    tok = ByteLevelBPETokenizer()
    tok.train(CORPUS, vocab_size=vocab_size)
    return tok


def pieces(tok: ByteLevelBPETokenizer, text: str) -> list[str]:
    """text の各トークンが元のテキストのどの部分かを、文字列で並べる。"""
    return [tok.decode([i]) for i in tok.encode(text)]
