"""トークナイザ: テキストと ID の列を行き来する。

上から順に、次のものが並ぶ。

1. `Tokenizer`: すべてのトークナイザの共通部分（語彙、encode/decode、
   保存と読み込み）。
2. `VocabTokenizer`: テキストを単位に切り出して語彙表を引くものの共通部分
   と、その差分だけを持つ `WhitespaceTokenizer`・`CharTokenizer`。
3. `ByteLevelBPETokenizer`: GPT-2 と同じバイトレベル BPE。

コード用の `CodeTokenizer` は code_tokenizer.py にある。
"""

from __future__ import annotations

import json
import math
import operator
import os
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeGuard, TypeVar

import regex

PathLike = str | os.PathLike[str]
T = TypeVar("T")
TokenizerT = TypeVar("TokenizerT", bound="Tokenizer")
Pair = tuple[str, str]


def _parse_json(text: str, source: str, expected: str) -> Any:
    """JSON の文字列を読む。壊れていれば直し方の分かる ValueError にする。

    source はエラーで示す出どころ（ファイルの名前など）。
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{source} は JSON として読めません（{e}）。"
            f"{expected}を指定してください。"
        ) from e


def _read_json(path: PathLike, expected: str) -> Any:
    """JSON のファイルを読む（エラーは _parse_json と同じ）。"""
    text = Path(path).read_text(encoding="utf-8")
    return _parse_json(text, os.fspath(path), expected)


# ---------------------------------------------------------------------
# 1. 共通部分
# ---------------------------------------------------------------------


class Tokenizer(ABC):
    """すべてのトークナイザの基底クラス。

    テキスト → トークン（文字列）の列 → ID の列、の 2 段で変換する。
    1 段目 `tokenize` とその逆 `detokenize` は実装ごとに違う。
    2 段目の語彙表を引く処理と、保存・読み込みはここに 1 度だけ書く。
    """

    def __init__(self) -> None:
        self.id_to_token: list[str] = []
        self.token_to_id: dict[str, int] = {}
        # 特殊トークン（文字列 → ID）。どれも語彙にも入っている
        self.special_tokens: dict[str, int] = {}

    @property
    def vocab_size(self) -> int:
        """語彙の大きさ（特殊トークンを含む）。"""
        return len(self.id_to_token)

    @abstractmethod
    def tokenize(self, text: str) -> list[str]:
        """テキストを、語彙にあるトークンの列に分ける。"""

    @abstractmethod
    def detokenize(self, tokens: Sequence[str]) -> str:
        """トークンの列をテキストに戻す。"""

    def encode(self, text: str) -> list[int]:
        """テキストを ID の列にする。"""
        if not self.id_to_token:
            raise ValueError(
                "語彙が空です。先に train(...) で語彙を作るか、"
                "load(...) で読み込んでください。"
            )
        return [self.token_to_id[t] for t in self.tokenize(text)]

    def decode(
        self, ids: Iterable[int], *, skip_special_tokens: bool = False
    ) -> str:
        """ID の列をテキストに戻す。語彙にない ID は ValueError。

        skip_special_tokens=True なら、特殊トークンを読み飛ばす（モデルが
        作った列から、``<bos>`` や ``<pad>`` を除いて文字列にするとき）。
        """
        specials = self.special_tokens.values()
        skip = set(specials) if skip_special_tokens else set()
        tokens = []
        for i in ids:
            # numpy や torch の整数も受け付けるが、負の ID は許さない
            # （Python の負の添字で末尾のトークンになってしまうため）
            i = operator.index(i)
            if not 0 <= i < self.vocab_size:
                last = self.vocab_size - 1
                raise ValueError(
                    f"ID {i} は語彙にありません（語彙の大きさは "
                    f"{self.vocab_size} で、ID は 0〜{last}）。別の語彙で"
                    "作った ID の列を渡していないか確かめてください。"
                )
            if i not in skip:
                tokens.append(self.id_to_token[i])
        return self.detokenize(tokens)

    def _set_vocab(self, tokens: Iterable[str]) -> None:
        """語彙を ID の順に並べたトークンの列で置き換える。"""
        self.id_to_token = list(tokens)
        self.token_to_id = {t: i for i, t in enumerate(self.id_to_token)}
        if len(self.token_to_id) != len(self.id_to_token):
            counts = Counter(self.id_to_token)
            dup = next(t for t, n in counts.items() if n > 1)
            raise ValueError(
                f"語彙に同じトークン {dup!r} が 2 回あります。"
                "1 つのトークンには 1 つの ID だけを割り当ててください。"
            )

    def _set_special_tokens(self, tokens: Iterable[str]) -> None:
        """語彙にあるトークンを特殊トークンとして印を付ける。"""
        self.special_tokens = {}
        for t in tokens:
            if t not in self.token_to_id:
                raise ValueError(
                    f"特殊トークン {t!r} が語彙にありません。"
                    "語彙と特殊トークンの一覧が同じ保存ファイルから来たもの"
                    "か確かめてください。"
                )
            self.special_tokens[t] = self.token_to_id[t]

    # -- 保存と読み込み（JSON。語彙は ID の順に並べて書く） ----------------

    def to_json(self) -> str:
        """語彙と設定を、人が読める JSON の文字列にする。"""
        state = {
            "type": type(self).__name__,
            "vocab": self.id_to_token,
            "special_tokens": list(self.special_tokens),
            **self._extra_state(),
        }
        return json.dumps(state, ensure_ascii=False, indent=1) + "\n"

    @classmethod
    def from_json(
        cls: type[TokenizerT], text: str, *, source: str = "JSON の文字列"
    ) -> TokenizerT:
        """`to_json` の文字列から作り直す。

        source はエラーのメッセージで示す出どころ（ファイルの名前など）。
        """
        name = cls.__name__
        state = _parse_json(text, source, f"{name}.save で保存したファイル")
        found = state.get("type") if isinstance(state, dict) else None
        if found != name:
            raise ValueError(
                f"{source} は {name} の保存ファイルではありません"
                f"（type は {found!r}）。保存したクラスの load で"
                "読み込んでください。"
            )
        vocab = state.get("vocab")
        specials = state.get("special_tokens", [])
        if not _is_str_list(vocab) or not _is_str_list(specials):
            raise ValueError(
                f"{source} の vocab と special_tokens は文字列の"
                "リストでなければなりません。ファイルが壊れていないか"
                "確かめてください。"
            )
        tokenizer = cls()
        tokenizer._set_vocab(vocab)
        tokenizer._load_extra_state(state)
        tokenizer._set_special_tokens(specials)
        return tokenizer

    def save(self, path: PathLike) -> None:
        """`to_json` の文字列をファイルに書く。"""
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls: type[TokenizerT], path: PathLike) -> TokenizerT:
        """`save` で保存したファイルから作り直す。"""
        text = Path(path).read_text(encoding="utf-8")
        return cls.from_json(text, source=os.fspath(path))

    def _extra_state(self) -> dict[str, Any]:
        """語彙のほかに保存するもの（派生クラスが足す）。"""
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        """`_extra_state` で保存したものを戻す（派生クラスが足す）。"""
        return None  # 既定では語彙のほかに戻すものはない


def _is_str_list(value: object) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(
        isinstance(v, str) for v in value
    )


# ---------------------------------------------------------------------
# 2. 語彙表を引くトークナイザ
# ---------------------------------------------------------------------

# 系列を揃える詰め物、未知語、文の始まり、文の終わり
PAD, UNK, BOS, EOS = SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")


class VocabTokenizer(Tokenizer):
    """テキストを単位（単語・文字など）に切り出し、語彙表を引く。

    語彙はコーパスに出てくる単位から作り、語彙にない単位は `<unk>` に
    する。派生クラスは切り出し方 `split` と戻し方 `detokenize` を持つ。
    """

    @abstractmethod
    def split(self, text: str) -> list[str]:
        """テキストを単位に切り出す（語彙は見ない）。"""

    def __init__(
        self, special_tokens: Sequence[str] = SPECIAL_TOKENS
    ) -> None:
        super().__init__()
        # train が語彙の先頭に置く特殊トークン。<unk> が無ければ、
        # 語彙にない単位は ValueError にする
        self.special_token_names = tuple(special_tokens)

    def reserved_tokens(self, counts: Counter[str]) -> list[str]:
        """出現回数によらず語彙に入れるトークン（既定ではない）。"""
        return []

    def train(
        self,
        text: str,
        min_freq: int = 1,
        max_vocab_size: int | None = None,
    ) -> None:
        """コーパスから語彙を作る。

        語彙は、特殊トークン（`special_token_names` の順）、
        `reserved_tokens`、コーパスの単位の順に並ぶ。コーパスの単位は出現回数の多い順で、
        同数なら文字列の小さい順（コードポイント順）。出現回数が
        `min_freq` 未満の単位は入れない。`max_vocab_size` は特殊トークン
        を含めた語彙の大きさの上限。この並べ方は Hugging Face tokenizers
        の WordLevelTrainer と同じ。
        """
        if min_freq < 1:
            raise ValueError(
                f"min_freq={min_freq} は使えません。1 以上を指定して"
                "ください（1 ならコーパスの単位をすべて語彙に入れます）。"
            )
        counts = Counter(self.split(text))
        if not counts:
            raise ValueError(
                "学習コーパスが空です（単位が 1 つも切り出せません"
                "でした）。空でないテキストを渡してください。"
            )
        fixed = [*self.special_token_names, *self.reserved_tokens(counts)]
        vocab = list(dict.fromkeys(fixed))  # 重複を除き、順は保つ
        if max_vocab_size is not None and max_vocab_size < len(vocab):
            raise ValueError(
                f"max_vocab_size={max_vocab_size} は小さすぎます。特殊"
                f"トークンなど必ず入れるトークンだけで {len(vocab)} 個"
                f"あるので、{len(vocab)} 以上を指定してください。"
            )
        known = set(vocab)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        vocab += [u for u, n in ranked if n >= min_freq and u not in known]
        self._set_vocab(vocab[:max_vocab_size])
        self._set_special_tokens(self.special_token_names)

    def _set_special_tokens(self, tokens: Iterable[str]) -> None:
        super()._set_special_tokens(tokens)
        self.special_token_names = tuple(self.special_tokens)

    def tokenize(self, text: str) -> list[str]:
        known = self.token_to_id
        if UNK in self.special_tokens:
            return [u if u in known else UNK for u in self.split(text)]
        units = self.split(text)
        for u in units:
            if u not in known:
                raise ValueError(
                    f"{u!r} は語彙にありません（<unk> を持たない語彙"
                    "なので、語彙にない単位を表せません）。語彙を作った"
                    "テキストにある単位だけを使ってください。"
                )
        return units


class WhitespaceTokenizer(VocabTokenizer):
    """空白で区切った単語を 1 トークンにする。

    decode は単語を空白 1 つでつなぐので、空白の種類と数は元に戻らない。
    """

    def split(self, text: str) -> list[str]:
        return text.split()

    def detokenize(self, tokens: Sequence[str]) -> str:
        return " ".join(tokens)


class CharTokenizer(VocabTokenizer):
    """1 文字（Unicode のコードポイント）を 1 トークンにする。

    特殊トークンは作るときに選べる。既定は `SPECIAL_TOKENS` の 4 つ。
    系列変換の課題の語彙（tasks.make_vocab）は ``<pad>``・``<bos>``・
    ``<eos>`` の 3 つで、``<unk>`` を持たない。
    """

    @classmethod
    def from_chars(
        cls,
        chars: Iterable[str],
        special_tokens: Sequence[str] = SPECIAL_TOKENS,
    ) -> CharTokenizer:
        """特殊トークンと chars の文字（コードポイント順）からなる語彙。

        train と違い、出現回数は見ない。同じ文字の集合からはいつも同じ
        ID の割り当てになる。
        """
        unique = sorted(set(chars))
        if any(len(c) != 1 for c in unique):
            raise ValueError(
                "語彙の要素は 1 文字にしてください（文字列を渡すときは、"
                "その文字の集まりとして読みます）。"
            )
        tokenizer = cls(special_tokens)
        tokenizer._set_vocab([*special_tokens, *unique])
        tokenizer._set_special_tokens(special_tokens)
        return tokenizer

    def split(self, text: str) -> list[str]:
        return list(text)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return "".join(tokens)


# ---------------------------------------------------------------------
# 3. バイトレベル BPE（GPT-2）
# ---------------------------------------------------------------------

# GPT-2 の事前分割: 英語の短縮形、(空白 + )文字の並び、(空白 + )数字の並び、
# (空白 + )記号の並び、空白の並び。BPE のマージはこの断片をまたがない
GPT2_SPLIT_PATTERN = regex.compile(
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+"
    r"|\s+(?!\S)|\s+"
)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2 のバイト → 文字の対応表。

    256 個のバイトを、それぞれ目に見える 1 文字に置き換える。印字できる
    バイトはその文字のまま、空白や制御文字は U+0100 以降の文字にずらす
    （空白 0x20 は 'Ġ'）。こうすると語彙ファイルを普通のテキストとして
    読み書きでき、トークンの区切りに空白を使える。
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    shifted = (b for b in range(256) if b not in table)
    for n, b in enumerate(shifted):
        table[b] = chr(256 + n)
    return table


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}
# 文字コード順に並べたもの。GPT-2 の encoder.json の ID 0〜255 と同じ順
BYTE_TOKENS = sorted(CHAR_TO_BYTE)


def count_pairs(
    words: Iterable[Sequence[T]], weights: Iterable[int]
) -> Counter[tuple[T, T]]:
    """各単語の中で隣り合う組を数える。単語の重みは出現回数。

    単語の境界をまたぐ組は数えない。BPE と WordPiece の学習が共に使う。
    """
    counts: Counter[tuple[T, T]] = Counter()
    for word, weight in zip(words, weights, strict=True):
        for pair in pairwise(word):
            counts[pair] += weight
    return counts


def merge_pair(seq: list[T], pair: tuple[T, T], new: T) -> list[T]:
    """seq の中の pair を左から重ならないように new に置き換える。"""
    out = []
    i = 0
    while i < len(seq):
        if i + 1 < len(seq) and (seq[i], seq[i + 1]) == pair:
            out.append(new)
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return out


def _parse_merges(lines: Iterable[str], source: str) -> list[Pair]:
    """vocab.bpe 形式のマージ規則（1 行に「左 右」）を読む。"""
    merges = []
    for lineno, line in enumerate(lines, 1):
        if not line or (lineno == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise ValueError(
                f"{source} の {lineno} 行目 {line!r} はマージ規則の形では"
                "ありません。1 行に左と右の 2 つのトークンを空白 1 つで"
                "区切って書きます（GPT-2 の vocab.bpe の形）。"
            )
        merges.append((parts[0], parts[1]))
    return merges


class ByteLevelBPETokenizer(Tokenizer):
    """GPT-2 と同じバイトレベル BPE（Byte Pair Encoding）。

    テキストを UTF-8 のバイト列にし、各バイトを `BYTE_TO_CHAR` で 1 文字に
    置き換えた文字列の上で、学習したマージ規則を順位の高い順に当てる。
    語彙のトークンもこの置き換えた文字列で持つ（GPT-2 の encoder.json と
    同じ）。最初から 256 個のバイトが語彙にあるので、どんなテキストも
    `<unk>` なしで表せる。
    """

    def __init__(self) -> None:
        super().__init__()
        self._set_vocab(BYTE_TOKENS)
        # マージ規則（左, 右）の列と、その逆引き（規則 → 順位）。
        # 順位が小さいほど先に当てる
        self.merges: list[Pair] = []
        self.merge_ranks: dict[Pair, int] = {}
        self._special_pattern: regex.Pattern[str] | None = None
        # 同じ断片は何度出ても同じ結果になるので覚えておく（GPT-2 と同じ）
        self._cache: dict[str, list[str]] = {}

    # -- 学習 ----------------------------------------------------------

    def train(self, text: str, vocab_size: int) -> None:
        """text から、大きさ vocab_size（256 個のバイト + マージ）の語彙を
        学習する。

        毎回、隣り合うトークンのペアのうちコーパス全体で最も多いものを
        1 つマージする。**同点なら (左の ID, 右の ID) が辞書順で最も小さい
        ペアを選ぶ。** ID は語彙に入った順で、最初の 256 個は `BYTE_TOKENS`
        の順（GPT-2 と同じ）。この規則は Hugging Face tokenizers の
        BpeTrainer と同じなので、同じコーパスからは同じマージ列ができる。
        登録してあった特殊トークンは消えるので、学習のあとで
        `register_special_tokens` で登録する。
        """
        if vocab_size < 256:
            raise ValueError(
                f"vocab_size={vocab_size} は小さすぎます。バイトレベル"
                " BPE の語彙は 256 個のバイトから始まるので、256 以上"
                "（256 + マージの回数）を指定してください。"
            )
        if not text:
            raise ValueError(
                "学習コーパスが空です。1 文字以上のテキストを渡して"
                "ください。"
            )
        # 同じ断片は 1 回だけ持ち、出現回数で重みを付ける
        chunk_counts = Counter(GPT2_SPLIT_PATTERN.findall(text))
        base_id = {c: i for i, c in enumerate(BYTE_TOKENS)}
        words = [
            [base_id[BYTE_TO_CHAR[b]] for b in chunk.encode("utf-8")]
            for chunk in chunk_counts
        ]
        weights = list(chunk_counts.values())

        vocab = list(BYTE_TOKENS)
        vocab_ids = dict(base_id)
        merges: list[Pair] = []
        while len(vocab) < vocab_size:
            pair_counts = count_pairs(words, weights)
            if not pair_counts:
                break  # どの断片も 1 トークンになった
            best = min(pair_counts, key=lambda p: (-pair_counts[p], p))
            left, right = vocab[best[0]], vocab[best[1]]
            new_token = left + right
            # 同じ文字列が別の分け方から既にできていれば、その ID を使う
            if new_token not in vocab_ids:
                vocab_ids[new_token] = len(vocab)
                vocab.append(new_token)
            # 左のトークンを含まない断片は変わらないので飛ばす（速さのため）
            new_id = vocab_ids[new_token]
            words = [
                merge_pair(w, best, new_id) if best[0] in w else w
                for w in words
            ]
            merges.append((left, right))

        self._set_vocab(vocab)
        self._set_merges(merges)
        self._set_special_tokens([])

    # -- 特殊トークン ----------------------------------------------------

    def register_special_tokens(self, tokens: Iterable[str]) -> None:
        """特殊トークン（例 `<|endoftext|>`）を語彙の末尾に足す。

        encode はテキスト中の特殊トークンの文字列をそのまま 1 トークンに
        する。
        """
        for t in tokens:
            if t in self.special_tokens:
                continue
            if not t or t in self.token_to_id:
                raise ValueError(
                    f"{t!r} は特殊トークンにできません（空文字列か、普通の"
                    "トークンとして語彙にある）。語彙に無い文字列を選んで"
                    "ください。"
                )
            self._set_vocab([*self.id_to_token, t])
            self.special_tokens[t] = self.token_to_id[t]
        self._set_special_tokens(list(self.special_tokens))

    def _set_special_tokens(self, tokens: Iterable[str]) -> None:
        super()._set_special_tokens(tokens)
        # 長いものから試し、`<|a|>` と `<|a|>b` のような重なりで長い方を取る
        longest_first = sorted(self.special_tokens, key=len, reverse=True)
        alternatives = "|".join(regex.escape(t) for t in longest_first)
        self._special_pattern = (
            regex.compile(f"({alternatives})") if alternatives else None
        )

    # -- encode / decode -------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        if self._special_pattern is None:
            parts = [text]
        else:
            # 捕捉グループで区切るので、特殊トークンも parts に残る
            parts = self._special_pattern.split(text)
        tokens: list[str] = []
        for part in parts:
            if part in self.special_tokens:
                tokens.append(part)
                continue
            for chunk in GPT2_SPLIT_PATTERN.findall(part):
                tokens.extend(self._bpe(chunk))
        return tokens

    def _bpe(self, chunk: str) -> list[str]:
        """1 つの断片に、マージ規則を順位の高い順に当てる。"""
        if chunk in self._cache:
            return self._cache[chunk]
        parts = [BYTE_TO_CHAR[b] for b in chunk.encode("utf-8")]
        while len(parts) > 1:
            ranks = self.merge_ranks
            best = min(
                pairwise(parts), key=lambda p: ranks.get(p, math.inf)
            )
            if best not in self.merge_ranks:
                break  # もう当てられる規則がない
            parts = merge_pair(parts, best, best[0] + best[1])
        self._cache[chunk] = parts
        return parts

    def detokenize(self, tokens: Sequence[str]) -> str:
        data = b"".join(
            t.encode("utf-8")
            if t in self.special_tokens
            else bytes(CHAR_TO_BYTE[c] for c in t)
            for t in tokens
        )
        # ID の列の切れ目が文字の途中にあり得るので、UTF-8 として読めない
        # バイトは U+FFFD にする（GPT-2 と同じ）
        return data.decode("utf-8", errors="replace")

    # -- マージ規則の設定、保存と読み込み ---------------------------------

    def _set_merges(self, merges: Sequence[Pair]) -> None:
        """マージ規則を設定する。必要なトークンがすべて語彙にあること。"""
        missing = [c for c in BYTE_TOKENS if c not in self.token_to_id]
        if missing:
            raise ValueError(
                f"語彙にバイト 0x{CHAR_TO_BYTE[missing[0]]:02x} を表す"
                f"トークン {missing[0]!r} がありません。バイトレベル BPE"
                " の語彙には 256 個のバイトがすべて要ります。"
            )
        for left, right in merges:
            for t in (left, right, left + right):
                if t not in self.token_to_id:
                    raise ValueError(
                        f"マージ規則 {left!r} {right!r} に出てくるトーク"
                        f"ン {t!r} が語彙（encoder）にありません。"
                        "encoder.json と vocab.bpe が同じ語彙のものか"
                        "確かめてください。"
                    )
        self.merges = list(merges)
        # 同じ規則が 2 回あれば後の順位になる（GPT-2 と HF と同じ）
        self.merge_ranks = {pair: rank for rank, pair in enumerate(merges)}
        self._cache = {}

    def _extra_state(self) -> dict[str, Any]:
        return {"merges": [f"{a} {b}" for a, b in self.merges]}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        lines = state.get("merges")
        if not _is_str_list(lines):
            raise ValueError(
                "保存ファイルの merges が文字列のリストではありません。"
                "ファイルが壊れていないか確かめてください。"
            )
        self._set_merges(_parse_merges(lines, "保存ファイルの merges"))

    @classmethod
    def from_gpt2_files(
        cls,
        encoder_json_path: PathLike,
        vocab_bpe_path: PathLike,
    ) -> ByteLevelBPETokenizer:
        """GPT-2 形式の語彙（encoder.json と vocab.bpe）から作る。

        encoder.json はトークン → ID の辞書、vocab.bpe は 1 行に 1 つの
        マージ規則（上ほど順位が高い）。語彙にあってもバイトでもマージの
        結果でもないトークン（GPT-2 では `<|endoftext|>`）は特殊トークン
        として登録する。
        """
        encoder = _read_json(
            encoder_json_path, "GPT-2 形式の encoder.json（トークン → ID）"
        )
        if not isinstance(encoder, dict) or not all(
            type(i) is int for i in encoder.values()
        ):
            raise ValueError(
                f"{os.fspath(encoder_json_path)} はトークン → ID（整数）の"
                "辞書ではありません。GPT-2 形式の encoder.json を指定して"
                "ください。"
            )
        if sorted(encoder.values()) != list(range(len(encoder))):
            raise ValueError(
                f"{os.fspath(encoder_json_path)} の ID が 0 から隙間なく"
                "並んでいません。ID は 0〜(語彙の大きさ - 1) を 1 回ずつ"
                "使ってください。"
            )
        text = Path(vocab_bpe_path).read_text(encoding="utf-8")
        merges = _parse_merges(text.splitlines(), os.fspath(vocab_bpe_path))

        tokenizer = cls()
        tokenizer._set_vocab(sorted(encoder, key=encoder.__getitem__))
        tokenizer._set_merges(merges)
        made = {*BYTE_TOKENS, *(a + b for a, b in merges)}
        tokenizer._set_special_tokens(
            t for t in tokenizer.id_to_token if t not in made
        )
        return tokenizer

    def save_gpt2_files(
        self, encoder_json_path: PathLike, vocab_bpe_path: PathLike
    ) -> None:
        """GPT-2 形式の語彙（encoder.json と vocab.bpe）に書き出す。"""
        text = json.dumps(self.token_to_id, ensure_ascii=False)
        Path(encoder_json_path).write_text(text, encoding="utf-8")
        lines = ["#version: 0.2", *(f"{a} {b}" for a, b in self.merges)]
        Path(vocab_bpe_path).write_text(
            "\n".join(lines) + "\n", encoding="utf-8"
        )
