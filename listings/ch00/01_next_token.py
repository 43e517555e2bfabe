"""はじめに: 字句解析器の出力から「次に来るトークン」の頻度を数える。

Python 標準の字句解析器 `tokenize` でソースをトークン列にし、
あるトークンの直後に何が来たかを数える。
言語モデルが学ぶものの、いちばん素朴な形である。

>>> src = "def f(x):\\n    return x + 1\\n\\ndef g(y):\\n    return f(y)\\n"
>>> significant_tokens(src)[:6]
['def', 'f', '(', 'x', ')', ':']
>>> counts = next_token_counts(src, "return")
>>> counts
Counter({'x': 1, 'f': 1})
>>> next_token_distribution(counts)
{'x': 0.5, 'f': 0.5}
"""

import io
import tokenize
from collections import Counter
from itertools import pairwise

# 意味を持たないトークン（コメント、改行、字下げの増減）は数えない
_LAYOUT = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
}


def significant_tokens(source: str) -> list[str]:
    """ソースを字句解析し、レイアウト以外のトークンの文字列を返す。"""
    readline = io.StringIO(source).readline
    return [
        tok.string
        for tok in tokenize.generate_tokens(readline)
        if tok.type not in _LAYOUT
    ]


def next_token_counts(source: str, keyword: str) -> Counter[str]:
    """`keyword` の直後に来たトークンを数える（バイグラムの頻度）。"""
    toks = significant_tokens(source)
    return Counter(b for a, b in pairwise(toks) if a == keyword)


def next_token_distribution(counts: Counter[str]) -> dict[str, float]:
    """頻度を合計 1 の確率分布に直す（最尤推定）。"""
    total = sum(counts.values())
    return {tok: n / total for tok, n in counts.most_common()}
