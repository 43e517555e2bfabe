"""第16章 (1/2): 系列変換の評価指標（完全一致率とトークン正解率）。

どちらも、モデルが貪欲法などで作り終えた出力の文字列と、正解の
文字列を比べる。モデルにもテンソルにも依らないので、文字列の組だけで
確かめられる。

>>> import importlib
>>> m = importlib.import_module("listings.ch16.01_metrics")
>>> preds = ["x 2 - 3 *", "x 2 3 * -", "x 2 -"]
>>> golds = ["x 2 - 3 *", "x 2 - 3 *", "x 2 - 3 *"]
>>> m.exact_match_rate(preds, golds)
0.3333333333333333
>>> [round(m.token_accuracy(p, g), 2) for p, g in zip(preds, golds)]
[1.0, 0.7, 0.5]
>>> round(m.mean_token_accuracy(preds, golds), 3)
0.733
"""

from collections.abc import Sequence

# 出力の終わり（<eos>）を表す印。本物の文字と重ならない
END = "\0"


def exact_match_rate(
    predictions: Sequence[str], targets: Sequence[str]
) -> float:
    """出力が正解と 1 文字も違わずに一致した例の割合（0〜1）。"""
    if len(predictions) != len(targets) or not targets:
        raise ValueError("予測と正解を同じ数（1 つ以上）渡してください")
    hits = sum(p == t for p, t in zip(predictions, targets, strict=True))
    return hits / len(targets)


def token_accuracy(prediction: str, target: str) -> float:
    """正解の各位置で、予測の文字が一致した割合（<eos> の位置を含む）。

    位置ごとに比べるので、途中で 1 文字抜けると、それより後ろは
    ずれて、ほとんど一致しなくなる。予測が長すぎる分は数えないが、
    正解の終わりの位置で <eos> を出していなければ 1 つ間違いになる。
    """
    t = [*target, END]
    p = [*prediction, END]
    same = sum(a == b for a, b in zip(p, t, strict=False))
    return same / len(t)


def mean_token_accuracy(
    predictions: Sequence[str], targets: Sequence[str]
) -> float:
    """例ごとのトークン正解率の平均。"""
    if len(predictions) != len(targets) or not targets:
        raise ValueError("予測と正解を同じ数（1 つ以上）渡してください")
    scores = [
        token_accuracy(p, t)
        for p, t in zip(predictions, targets, strict=True)
    ]
    return sum(scores) / len(scores)
