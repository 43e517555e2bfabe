"""第19章: BPE の学習と符号化を、文字の列の上で一から書く。

Sennrich et al. (2016) の形で、単語を文字の列にし、隣り合う組を数えて
最も多い組をマージする、を繰り返す。学習の結果はマージの規則の列で、
符号化はその規則を学習した順に当てる。

組を数える `count_pairs` と、組を 1 つのトークンに置き換える
`merge_pair` は、パッケージのバイトレベル BPE（`ByteLevelBPETokenizer`）
と同じ関数を使う。パッケージとの違いは、出発点が文字かバイトか、
事前分割（正規表現）の有無、速さのための工夫だけである。
"""

from __future__ import annotations

from easy_transformer.tokenizer import count_pairs, merge_pair

Pair = tuple[str, str]

# 単語とその出現回数。コードの識別子に出てくる語を模した小さなコーパス
WORDS = {
    "get": 10,
    "set": 8,
    "reset": 4,
    "getter": 3,
    "setter": 3,
    "test": 6,
    "tester": 2,
}


def train_bpe(word_counts: dict[str, int], num_merges: int) -> list[Pair]:
    """num_merges 回のマージを学習し、マージした組を学習した順に返す。"""
    words = [list(w) for w in word_counts]
    weights = list(word_counts.values())
    # 記号が語彙に入った順番。最初は文字（コードポイント順）
    order = {c: i for i, c in enumerate(sorted(set("".join(word_counts))))}
    merges: list[Pair] = []
    for _ in range(num_merges):
        counts = count_pairs(words, weights)
        if not counts:
            break  # どの単語も 1 トークンになった
        # 最も多い組。同数なら、左、右の順に先に語彙に入った記号の組
        best = min(
            counts, key=lambda p: (-counts[p], order[p[0]], order[p[1]])
        )
        order.setdefault(best[0] + best[1], len(order))
        merges.append(best)
        words = [merge_pair(w, best, best[0] + best[1]) for w in words]
    return merges


def encode_bpe(word: str, merges: list[Pair]) -> list[str]:
    """学習したマージの規則を、学習した順に 1 つずつ当てる。"""
    symbols = list(word)
    for pair in merges:
        symbols = merge_pair(symbols, pair, pair[0] + pair[1])
    return symbols
