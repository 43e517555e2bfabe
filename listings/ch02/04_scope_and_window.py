"""第2章: スコープ解決（記号表のスタック）と、注意のマスク（文脈窓）。"""

from __future__ import annotations

from torch import Tensor

from easy_transformer.attention import causal_mask


class Scopes:
    """入れ子のスコープ。内側から外側へ名前を探す。"""

    def __init__(self) -> None:
        self.stack: list[dict[str, str]] = [{}]

    def enter(self) -> None:
        self.stack.append({})

    def exit(self) -> None:
        self.stack.pop()

    def define(self, name: str, info: str) -> None:
        self.stack[-1][name] = info

    def resolve(self, name: str) -> str:
        for scope in reversed(self.stack):
            if name in scope:
                return scope[name]
        raise NameError(f"{name!r} は定義されていません")


def window_mask(seq_len: int, window: int) -> Tensor:
    """因果マスクに、直前 window 個までしか見ない制限を加えたもの。

    True が「注意してよい」位置。クエリ i が見るのはキー
    max(0, i - window + 1) から i まで。
    """
    mask = causal_mask(seq_len)
    too_far = causal_mask(seq_len).tril(diagonal=-window)
    return mask & ~too_far
