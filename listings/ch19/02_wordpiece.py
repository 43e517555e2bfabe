"""第19章: 小さな WordPiece。BPE（01_bpe.py）との差分だけを持つ。

違いは 2 つだけである。

1. 学習: マージする組を、組の回数ではなく、組の回数を各部分の回数の積で
   割ったスコアで選ぶ（言語モデルの尤度の増え方の近似）。
2. 符号化: マージの規則は使わず、語彙だけを見て、単語の先頭から最長一致
   のトークンを貪欲に切り取る。単語の 2 つ目以降の部分には ``##`` を
   付ける。切り取れない所があれば、単語全体を ``[UNK]`` にする。

原典の学習手順の細部は公開されていないので、ここでのスコアは単純化した
ものである（本文を参照）。
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

from easy_transformer.tokenizer import count_pairs, merge_pair

CONTINUATION = "##"  # 単語の途中から始まる部分の印
UNK = "[UNK]"


def initial_pieces(word: str) -> list[str]:
    """単語を 1 文字ずつに分け、2 文字目からに印を付ける。"""
    return [word[0], *(CONTINUATION + c for c in word[1:])]


def join(left: str, right: str) -> str:
    """2 つの部分をつなぐ（右の印は外す）。"""
    return left + right.removeprefix(CONTINUATION)


def train_wordpiece(
    word_counts: dict[str, int], num_merges: int
) -> list[str]:
    """num_merges 回のマージを学習し、語彙（トークンの列）を返す。"""
    words = [initial_pieces(w) for w in word_counts]
    weights = list(word_counts.values())
    vocab = sorted({p for w in words for p in w})
    for _ in range(num_merges):
        pairs = count_pairs(words, weights)
        if not pairs:
            break
        units: Counter[str] = Counter()
        for w, n in zip(words, weights, strict=True):
            for u in w:
                units[u] += n
        # BPE との違い: 回数ではなく、回数 / (左の回数 × 右の回数)。
        # Fraction で比べるので、浮動小数点の丸めで順位が揺れない
        score = {
            p: Fraction(c, units[p[0]] * units[p[1]])
            for p, c in pairs.items()
        }
        best = min(score, key=lambda p: (-score[p], p))
        new = join(*best)
        vocab.append(new)
        words = [merge_pair(w, best, new) for w in words]
    return vocab


def encode_wordpiece(word: str, vocab: set[str]) -> list[str]:
    """最長一致の貪欲法で、単語を語彙のトークンに分ける。"""
    tokens = []
    start = 0
    while start < len(word):
        prefix = CONTINUATION if start > 0 else ""
        # 残りの文字列のうち、語彙にある最も長い先頭部分を探す
        for end in range(len(word), start, -1):
            piece = prefix + word[start:end]
            if piece in vocab:
                tokens.append(piece)
                start = end
                break
        else:
            return [UNK]  # どの長さでも見つからない
    return tokens
