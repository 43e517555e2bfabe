"""easy_transformer.tokenizer のテスト。

正しさは、よく保守された参照実装との一致で確かめる。

- 語彙表方式（空白区切り・文字単位）: Hugging Face tokenizers の
  WordLevelTrainer（語彙の作り方）と WordLevel（encode）。
- バイトレベル BPE: tokenizers の BpeTrainer（学習のマージ列）と
  BPE + ByteLevel（encode）。本物の GPT-2 の語彙があれば、それを読んだ
  tokenizers と transformers の GPT-2 トークナイザとも比べる。
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Regex, decoders, models, pre_tokenizers, trainers
from tokenizers import Tokenizer as HFTokenizer

from easy_transformer import tokenizer as tokenizer_module
from easy_transformer.code_tokenizer import CodeTokenizer
from easy_transformer.data import data_path
from easy_transformer.tokenizer import (
    BYTE_TOKENS,
    SPECIAL_TOKENS,
    ByteLevelBPETokenizer,
    CharTokenizer,
    Tokenizer,
    VocabTokenizer,
    WhitespaceTokenizer,
)

ROOT = Path(__file__).resolve().parent.parent
# 本物の GPT-2 の語彙。リポジトリの data/ に同梱し、SHA-256 を確かめて読む
# （easy_transformer.data。出典とライセンスは data/README.md）
GPT2_ENCODER = data_path("gpt2/encoder.json")
GPT2_MERGES = data_path("gpt2/vocab.bpe")
EOT = "<|endoftext|>"

# 学習用のコーパス: 日本語の docstring と英語の識別子が混ざった Python
CORPUS = Path(tokenizer_module.__file__).read_text(encoding="utf-8")

# 比べる文字列: 英語、日本語、絵文字、空白の連続、改行、タブ、コード、
# 数字、アポストロフィ、特殊トークン
SAMPLES = [
    "",
    "Hello, world! This is a test.",
    "It's John's book. We'll see; they've gone, I'm here, you'd know.",
    "IT'S SHOUTING'S 'S 'LL 're 've 'm 'd't",
    "日本語の文章です。東京タワーは333メートル。",
    "絵文字 🤗🎉 と結合した絵文字 👨‍👩‍👧‍👦 と国旗 🇯🇵",
    "spaces    between     words   ",
    "   leading spaces and trailing   ",
    "line1\nline2\n\n\nline5\r\nwindows\rold mac",
    "\ttab\t\tseparated\tvalues\n\t\tindented",
    "def f(x: int) -> int:\n    return x ** 2  # 2 乗\n",
    'class A:\n    """doc"""\n\n    def __init__(self):\n        pass\n',
    "12345 3.14159 1,000,000 0x1F 1e-10 ٣٤٥ ⅫⅣ",
    "café naïve e\u0301 Ωμέγα Привет مرحبا",
    f"{EOT}Hello{EOT} world {EOT}{EOT}",
    "\u3000全角空白\u3000と\u00a0ノーブレーク\u00a0空白",
]
# サロゲートを除いた任意の Unicode 文字列
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)


# ---------------------------------------------------------------------
# 参照実装（Hugging Face）の用意
# ---------------------------------------------------------------------


def hf_byte_level_bpe(encoder: Path, merges: Path) -> HFTokenizer:
    """同じ語彙ファイルを読んだ、GPT-2 と同じ設定の tokenizers。"""
    hf = HFTokenizer(models.BPE.from_file(str(encoder), str(merges)))
    # GPT-2 は先頭に空白を足さない。正規表現は GPT-2 と同じもの
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(
        add_prefix_space=False, use_regex=True
    )
    hf.decoder = decoders.ByteLevel()
    return hf


def hf_gpt2_tokenizer(
    encoder: Path, merges: Path
) -> Callable[[str], list[int]]:
    """transformers の GPT-2 トークナイザに語彙ファイルを渡したもの。"""
    from transformers import GPT2TokenizerFast

    # transformers 5 から引数の名前が vocab_file/merges_file から変わった
    params = inspect.signature(GPT2TokenizerFast.__init__).parameters
    names = (
        ("vocab_file", "merges_file")
        if "vocab_file" in params
        else (
            "vocab",
            "merges",
        )
    )
    tok = GPT2TokenizerFast(
        **dict(zip(names, (str(encoder), str(merges)), strict=True))
    )
    return lambda text: list(tok(text)["input_ids"])


def hf_bpe_merges(corpus: str, vocab_size: int) -> tuple[list, dict]:
    """tokenizers の BpeTrainer で学習したマージ列と語彙。"""
    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf.train_from_iterator([corpus], trainer)
    model = json.loads(hf.to_str())["model"]
    merges = [
        tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
        for m in model["merges"]
    ]
    return merges, model["vocab"]


@cache
def trained_bpe() -> ByteLevelBPETokenizer:
    tok = ByteLevelBPETokenizer()
    tok.train(CORPUS, vocab_size=400)
    return tok


@pytest.fixture(scope="module")
def own_gpt2_files(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path]:
    """自前で学習した BPE（特殊トークン付き）を GPT-2 形式で書き出す。"""
    tok = ByteLevelBPETokenizer()
    tok.train(CORPUS, vocab_size=400)
    tok.register_special_tokens([EOT])
    folder = tmp_path_factory.mktemp("own_gpt2")
    tok.save_gpt2_files(folder / "encoder.json", folder / "vocab.bpe")
    return folder / "encoder.json", folder / "vocab.bpe"


# ---------------------------------------------------------------------
# すべての実装に共通の性質（minbpe と同じく、実装をパラメータ化する）
# ---------------------------------------------------------------------

WORDS = "the cat sat on the mat . the dog sat on the log .\n猫 が 座った"


@cache
def _make(name: str) -> tuple[Tokenizer, str]:
    """学習したトークナイザと、そのトークナイザで元に戻るはずの文字列。"""
    if name == "whitespace":
        ws = WhitespaceTokenizer()
        ws.train(WORDS)
        return ws, "the dog sat on the mat . 猫 が 座った"
    if name == "char":
        ch = CharTokenizer()
        ch.train(WORDS)
        return ch, "the dog sat on the log.\n猫が座った"
    if name == "task-char":
        # 系列変換の課題の語彙と同じ形（<unk> なし、文字はコードポイント順）
        task = CharTokenizer.from_chars(WORDS, special_tokens=TASK_SPECIALS)
        return task, "the dog sat on the log.\n猫が座った"
    if name == "bpe":
        return trained_bpe(), SAMPLES[5] + SAMPLES[10]
    code = CodeTokenizer()
    code.train(CORPUS)
    # CodeTokenizer は空白を正規化するので、正規化済みのコードは元に戻る
    return code, "def add(a, b):\n    return a+b  # 足す\n"


TASK_SPECIALS = ("<pad>", "<bos>", "<eos>")
IMPLEMENTATIONS = ["whitespace", "char", "task-char", "bpe", "code"]


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_encode_decode_roundtrip(name: str) -> None:
    tok, text = _make(name)
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_save_and_load_give_same_results(name: str, tmp_path: Path) -> None:
    tok, text = _make(name)
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    loaded = type(tok).load(path)
    assert loaded.id_to_token == tok.id_to_token
    assert loaded.special_tokens == tok.special_tokens
    assert loaded.encode(text) == tok.encode(text)
    assert loaded.decode(tok.encode(text)) == text
    # ファイルを経ずに文字列でも同じ
    again = type(tok).from_json(tok.to_json())
    assert again.id_to_token == tok.id_to_token
    assert again.special_tokens == tok.special_tokens
    assert again.to_json() == path.read_text(encoding="utf-8")
    # 人が読める JSON であること
    assert (
        json.loads(path.read_text(encoding="utf-8"))["type"]
        == type(tok).__name__
    )


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_decode_rejects_unknown_ids(name: str) -> None:
    tok, _ = _make(name)
    with pytest.raises(
        ValueError, match=f"ID {tok.vocab_size} は語彙にありません"
    ):
        tok.decode([0, tok.vocab_size])
    # 負の ID を Python の添字として末尾のトークンにしてしまわない
    with pytest.raises(ValueError, match="ID -1 は語彙にありません"):
        tok.decode([-1])


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_load_rejects_other_types(name: str, tmp_path: Path) -> None:
    tok, _ = _make(name)
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    other = WhitespaceTokenizer if "char" in name else CharTokenizer
    with pytest.raises(ValueError, match="の保存ファイルではありません"):
        other.load(path)


# ---------------------------------------------------------------------
# 語彙表方式: tokenizers の WordLevel と比べる
# ---------------------------------------------------------------------

WORD_LEVEL = [
    (WhitespaceTokenizer, pre_tokenizers.WhitespaceSplit()),
    # 1 文字ずつ切り出す（改行も 1 文字）
    (CharTokenizer, pre_tokenizers.Split(Regex(r"[\s\S]"), "isolated")),
]


@pytest.mark.parametrize(("cls", "pre_tokenizer"), WORD_LEVEL)
@pytest.mark.parametrize(
    ("min_freq", "max_vocab_size"), [(1, None), (2, None), (1, 20), (3, 50)]
)
def test_word_level_matches_huggingface(
    cls: type[VocabTokenizer],
    pre_tokenizer: pre_tokenizers.PreTokenizer,
    min_freq: int,
    max_vocab_size: int | None,
) -> None:
    ours = cls()
    ours.train(CORPUS, min_freq=min_freq, max_vocab_size=max_vocab_size)

    hf = HFTokenizer(models.WordLevel(unk_token="<unk>"))
    hf.pre_tokenizer = pre_tokenizer
    trainer = trainers.WordLevelTrainer(
        vocab_size=max_vocab_size or 10**9,
        min_frequency=min_freq,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    hf.train_from_iterator([CORPUS], trainer)

    hf_vocab = sorted(hf.get_vocab().items(), key=lambda kv: kv[1])
    assert ours.id_to_token == [t for t, _ in hf_vocab]
    # 語彙にない単語・文字は <unk> になる
    for text in [*SAMPLES, CORPUS[:2000]]:
        assert ours.encode(text) == hf.encode(text).ids


def test_word_level_special_tokens_come_first() -> None:
    tok = WhitespaceTokenizer()
    tok.train("a b b c c c")
    assert tok.id_to_token == [*SPECIAL_TOKENS, "c", "b", "a"]
    assert tok.special_tokens == {
        "<pad>": 0,
        "<unk>": 1,
        "<bos>": 2,
        "<eos>": 3,
    }
    assert tok.tokenize("a z c") == ["a", "<unk>", "c"]
    assert tok.decode(tok.encode("a z c")) == "a <unk> c"


def test_char_tokenizer_with_chosen_special_tokens() -> None:
    """特殊トークンを選べる。<unk> が無ければ、知らない文字は誤り。"""
    task = CharTokenizer.from_chars("ba\nb", special_tokens=TASK_SPECIALS)
    assert task.id_to_token == [*TASK_SPECIALS, "\n", "a", "b"]
    assert task.special_tokens == {"<pad>": 0, "<bos>": 1, "<eos>": 2}
    # 同じ文字の集合なら、並びによらず同じ ID
    same = CharTokenizer.from_chars("ab\n", special_tokens=TASK_SPECIALS)
    assert same.id_to_token == task.id_to_token
    with pytest.raises(ValueError, match="'z' は語彙にありません"):
        task.encode("az")
    ids = [1, *task.encode("ab"), 2, 0]
    assert task.decode(ids) == "<bos>ab<eos><pad>"
    assert task.decode(ids, skip_special_tokens=True) == "ab"

    # 特殊トークンなし（語彙はテキストの文字だけ）で学習する
    plain = CharTokenizer(special_tokens=())
    plain.train("abca")
    assert plain.id_to_token == ["a", "b", "c"]
    assert plain.special_tokens == {}
    with pytest.raises(ValueError, match="語彙にありません"):
        plain.encode("d")
    loaded = CharTokenizer.from_json(plain.to_json())
    assert loaded.special_token_names == ()
    assert loaded.encode("cab") == plain.encode("cab")
    with pytest.raises(ValueError, match="1 文字にしてください"):
        CharTokenizer.from_chars(["ab"])


def test_from_json_reports_the_source() -> None:
    with pytest.raises(
        ValueError, match="保存した語彙 は JSON として読めません"
    ):
        CharTokenizer.from_json("{", source="保存した語彙")


def test_word_level_bad_inputs() -> None:
    tok = WhitespaceTokenizer()
    with pytest.raises(ValueError, match=r"語彙が空です.*train"):
        tok.encode("a b")
    with pytest.raises(ValueError, match="学習コーパスが空です"):
        tok.train("")
    with pytest.raises(ValueError, match="学習コーパスが空です"):
        tok.train(" \n\t ")
    with pytest.raises(ValueError, match="min_freq=0 は使えません"):
        tok.train("a b", min_freq=0)
    with pytest.raises(
        ValueError, match=r"max_vocab_size=3 は小さすぎます.*4 以上"
    ):
        tok.train("a b", max_vocab_size=3)


# ---------------------------------------------------------------------
# バイトレベル BPE の学習: tokenizers の BpeTrainer と比べる
# ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("corpus", "vocab_size"),
    [
        (CORPUS, 400),
        (" ".join(SAMPLES) * 3, 330),
        ("aaaa aaaa aa a aaa bbbb abab", 270),  # 重なるペア aaa
    ],
)
def test_bpe_training_matches_huggingface(
    corpus: str, vocab_size: int
) -> None:
    ours = ByteLevelBPETokenizer()
    ours.train(corpus, vocab_size)
    hf_merges, hf_vocab = hf_bpe_merges(corpus, vocab_size)
    assert ours.merges == hf_merges
    assert ours.token_to_id == hf_vocab


def test_bpe_base_vocab_is_gpt2_byte_order() -> None:
    tok = ByteLevelBPETokenizer()
    assert tok.vocab_size == 256
    assert tok.id_to_token == BYTE_TOKENS
    assert tok.id_to_token[:3] == ["!", '"', "#"]
    # 空白 0x20 は 'Ġ' に置き換えて持つ
    assert tok.tokenize(" a") == ["Ġ", "a"]


def test_bpe_training_is_deterministic() -> None:
    first, second = ByteLevelBPETokenizer(), ByteLevelBPETokenizer()
    first.train(CORPUS, 350)
    second.train(CORPUS, 350)
    assert first.merges == second.merges
    assert first.id_to_token == second.id_to_token


@pytest.mark.parametrize(
    ("corpus", "expected"),
    [
        # 3 つのペアがどれも 1 回: (a, b) < (c, d) < (Ġ, c) の順に選ぶ
        ("ab cd", [("a", "b"), ("c", "d"), ("Ġ", "cd")]),
        # 出てくる順にはよらない
        ("cd ab", [("a", "b"), ("c", "d"), ("Ġ", "ab")]),
        # バイトの値（空白 0x20 < 'x' 0x78）ではなく ID の順で比べる
        ("xy z", [("x", "y"), ("Ġ", "z")]),
    ],
)
def test_bpe_tie_break_rule(
    corpus: str, expected: list[tuple[str, str]]
) -> None:
    tok = ByteLevelBPETokenizer()
    tok.train(corpus, 256 + len(expected))
    assert tok.merges == expected
    # tokenizers の BpeTrainer も同じものを選ぶ
    assert hf_bpe_merges(corpus, 256 + len(expected))[0] == expected


def test_bpe_training_stops_when_nothing_to_merge() -> None:
    tok = ByteLevelBPETokenizer()
    tok.train("ab ab", 1000)
    assert tok.merges == [("a", "b"), ("Ġ", "ab")]
    assert tok.vocab_size == 258


def test_bpe_bad_inputs() -> None:
    tok = ByteLevelBPETokenizer()
    with pytest.raises(ValueError, match="学習コーパスが空です"):
        tok.train("", 300)
    with pytest.raises(
        ValueError, match=r"vocab_size=255 は小さすぎます.*256 以上"
    ):
        tok.train("abc", 255)
    with pytest.raises(ValueError, match="特殊トークンにできません"):
        tok.register_special_tokens(["a"])  # 既にバイトのトークンとしてある
    with pytest.raises(ValueError, match="特殊トークンにできません"):
        tok.register_special_tokens([""])


# ---------------------------------------------------------------------
# バイトレベル BPE の encode/decode
# ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(text=any_text)
def test_bpe_roundtrip_any_unicode(text: str) -> None:
    tok = trained_bpe()
    assert tok.decode(tok.encode(text)) == text


@pytest.mark.parametrize("text", SAMPLES)
def test_bpe_roundtrip_samples(text: str) -> None:
    tok = trained_bpe()
    assert tok.decode(tok.encode(text)) == text


def test_bpe_special_tokens() -> None:
    tok = ByteLevelBPETokenizer()
    tok.train(CORPUS, 300)
    tok.register_special_tokens([EOT, "<|a|>", "<|a|>b"])
    ids = tok.encode(f"x{EOT}<|a|>b<|a|>")
    assert tok.id_to_token[ids[0]] == "x"
    # 特殊トークンの文字列は 1 トークンに、重なれば長い方を取る
    assert ids[1:] == [300, 302, 301]
    assert tok.decode(ids) == f"x{EOT}<|a|>b<|a|>"
    # 登録し直しても ID は変わらない
    tok.register_special_tokens([EOT])
    assert tok.special_tokens == {EOT: 300, "<|a|>": 301, "<|a|>b": 302}


def test_bpe_decode_of_partial_character_uses_replacement() -> None:
    tok = ByteLevelBPETokenizer()  # マージなし: 1 バイト 1 トークン
    ids = tok.encode("あ")  # UTF-8 で 3 バイト
    assert len(ids) == 3
    assert tok.decode(ids[:2]) == "\ufffd"


# ---------------------------------------------------------------------
# GPT-2 形式の語彙: 同じファイルを読んだ tokenizers と比べる
# ---------------------------------------------------------------------


def test_gpt2_files_roundtrip(own_gpt2_files: tuple[Path, Path]) -> None:
    encoder, merges = own_gpt2_files
    tok = ByteLevelBPETokenizer.from_gpt2_files(encoder, merges)
    trained = trained_bpe()
    assert tok.merges == trained.merges
    assert tok.id_to_token == [*trained.id_to_token, EOT]
    # バイトでもマージの結果でもないトークンは特殊トークンになる
    assert tok.special_tokens == {EOT: 400}


@pytest.mark.parametrize("text", [*SAMPLES, CORPUS])
def test_own_gpt2_files_match_huggingface(
    own_gpt2_files: tuple[Path, Path], text: str
) -> None:
    tok = ByteLevelBPETokenizer.from_gpt2_files(*own_gpt2_files)
    hf = hf_byte_level_bpe(*own_gpt2_files)
    hf.add_special_tokens([EOT])
    assert tok.encode(text) == hf.encode(text).ids
    assert tok.decode(tok.encode(text)) == hf.decode(
        hf.encode(text).ids, skip_special_tokens=False
    )


@settings(max_examples=200, deadline=None)
@given(text=any_text)
def test_own_gpt2_files_match_huggingface_any_text(
    own_gpt2_files: tuple[Path, Path], text: str
) -> None:
    tok, hf = _cached_pair(*own_gpt2_files)
    assert tok.encode(text) == hf.encode(text).ids


@cache
def _cached_pair(
    encoder: Path, merges: Path
) -> tuple[ByteLevelBPETokenizer, HFTokenizer]:
    hf = hf_byte_level_bpe(encoder, merges)
    hf.add_special_tokens([EOT])
    return ByteLevelBPETokenizer.from_gpt2_files(encoder, merges), hf


def test_real_gpt2_vocab_matches_huggingface() -> None:
    encoder, merges = GPT2_ENCODER, GPT2_MERGES
    tok, hf = _cached_pair(encoder, merges)
    transformers_gpt2 = hf_gpt2_tokenizer(encoder, merges)
    assert tok.vocab_size == 50257
    assert tok.special_tokens == {EOT: 50256}
    for text in [*SAMPLES, CORPUS]:
        ids = tok.encode(text)
        assert ids == hf.encode(text).ids
        assert ids == transformers_gpt2(text)
        assert tok.decode(ids) == text
    # GPT-2 でよく知られた ID
    assert tok.encode("Hello world") == [15496, 995]


@settings(max_examples=300, deadline=None)
@given(text=any_text)
def test_real_gpt2_vocab_matches_huggingface_any_text(text: str) -> None:
    tok, hf = _cached_pair(GPT2_ENCODER, GPT2_MERGES)
    assert tok.encode(text) == hf.encode(text).ids


# ---------------------------------------------------------------------
# 壊れた語彙ファイル
# ---------------------------------------------------------------------


def _write(folder: Path, encoder: str, merges: str) -> tuple[Path, Path]:
    (folder / "encoder.json").write_text(encoder, encoding="utf-8")
    (folder / "vocab.bpe").write_text(merges, encoding="utf-8")
    return folder / "encoder.json", folder / "vocab.bpe"


def _byte_encoder(*extra: str) -> dict[str, int]:
    return {t: i for i, t in enumerate([*BYTE_TOKENS, *extra])}


def test_broken_encoder_json(tmp_path: Path) -> None:
    paths = _write(tmp_path, '{"a": 0, ', "#version: 0.2\n")
    with pytest.raises(ValueError, match="JSON として読めません"):
        ByteLevelBPETokenizer.from_gpt2_files(*paths)
    paths = _write(tmp_path, '["a", "b"]', "#version: 0.2\n")
    with pytest.raises(
        ValueError, match="トークン → ID（整数）の辞書ではありません"
    ):
        ByteLevelBPETokenizer.from_gpt2_files(*paths)
    gap = _byte_encoder()
    gap["ab"] = 300
    paths = _write(tmp_path, json.dumps(gap), "#version: 0.2\n")
    with pytest.raises(
        ValueError, match="ID が 0 から隙間なく並んでいません"
    ):
        ByteLevelBPETokenizer.from_gpt2_files(*paths)


def test_encoder_without_all_bytes(tmp_path: Path) -> None:
    encoder = {t: i for i, t in enumerate(BYTE_TOKENS[:-1])}
    paths = _write(tmp_path, json.dumps(encoder), "#version: 0.2\n")
    with pytest.raises(ValueError, match="256 個のバイトがすべて要ります"):
        ByteLevelBPETokenizer.from_gpt2_files(*paths)


@pytest.mark.parametrize("line", ["a b c", "ab", "a  b", " a"])
def test_malformed_merge_line(tmp_path: Path, line: str) -> None:
    paths = _write(
        tmp_path,
        json.dumps(_byte_encoder("ab")),
        f"#version: 0.2\na b\n{line}\n",
    )
    with pytest.raises(
        ValueError, match=r"の 3 行目 .* はマージ規則の形ではありません"
    ):
        ByteLevelBPETokenizer.from_gpt2_files(*paths)


def test_merge_with_token_missing_from_encoder(tmp_path: Path) -> None:
    # マージの結果 "ab" が encoder に無い
    paths = _write(
        tmp_path, json.dumps(_byte_encoder()), "#version: 0.2\na b\n"
    )
    with pytest.raises(
        ValueError, match="'ab' が語彙（encoder）にありません"
    ):
        ByteLevelBPETokenizer.from_gpt2_files(*paths)


def test_broken_saved_files(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="JSON として読めません"):
        ByteLevelBPETokenizer.load(path)
    trained_bpe().save(path)
    state = json.loads(path.read_text(encoding="utf-8"))
    state["merges"][0] = "only-one-token"
    path.write_text(json.dumps(state), encoding="utf-8")
    with pytest.raises(ValueError, match="マージ規則の形ではありません"):
        ByteLevelBPETokenizer.load(path)
    state["vocab"] = [*state["vocab"], state["vocab"][0]]
    path.write_text(json.dumps(state), encoding="utf-8")
    with pytest.raises(
        ValueError, match="同じトークン '!' が 2 回あります"
    ):
        ByteLevelBPETokenizer.load(path)


# ---------------------------------------------------------------------
# 第19章: 共通の部品（count_pairs、merge_pair）と、本文の BPE・WordPiece
# ---------------------------------------------------------------------

ch19_bpe = importlib.import_module("listings.ch19.01_bpe")
ch19_wp = importlib.import_module("listings.ch19.02_wordpiece")

# 英小文字の語と出現回数からなる小さなコーパス
word_counts = st.dictionaries(
    st.text(alphabet="abcde", min_size=1, max_size=8),
    st.integers(min_value=1, max_value=5),
    min_size=1,
    max_size=8,
)


def right_to_left_merge(seq: list[str], pair: tuple[str, str]) -> list[str]:
    """わざと壊した merge_pair: 右から置き換える（重なりの扱いが逆）。"""
    rev = tokenizer_module.merge_pair(seq[::-1], pair[::-1], "".join(pair))
    return rev[::-1]


def test_merge_pair_does_not_overlap() -> None:
    merge_pair = tokenizer_module.merge_pair
    assert merge_pair(list("eee"), ("e", "e"), "ee") == ["ee", "e"]
    assert merge_pair(list("eeee"), ("e", "e"), "ee") == ["ee", "ee"]
    # 壊した版は、重なった 3 つのうち右の 2 つを置き換えてしまう
    assert right_to_left_merge(list("eee"), ("e", "e")) == ["e", "ee"]


def test_count_pairs_is_weighted_and_stays_inside_words() -> None:
    counts = tokenizer_module.count_pairs([list("ab"), list("ba")], [3, 2])
    # 単語の境界をまたぐ ("b", "b") は数えない
    assert counts == {("a", "b"): 3, ("b", "a"): 2}


@settings(max_examples=50, deadline=None)
@given(words=word_counts, n=st.integers(min_value=1, max_value=10))
def test_listing_bpe_matches_package(words: dict[str, int], n: int) -> None:
    """本文の BPE（文字の上）とパッケージ（バイトの上）が同じ規則を学ぶ。

    英小文字だけなら、文字の辞書順とバイトの ID の順が同じなので、
    同点の規則も一致する。
    """
    merges = ch19_bpe.train_bpe(words, n)
    text = "\n".join(w for w, c in words.items() for _ in range(c))
    tok = ByteLevelBPETokenizer()
    tok.train(text, 256 + n)
    assert tok.merges == merges
    for w in words:
        assert tok.tokenize(w) == ch19_bpe.encode_bpe(w, merges)


@settings(max_examples=50, deadline=None)
@given(words=word_counts, n=st.integers(min_value=0, max_value=10))
def test_wordpiece_splits_training_words_into_vocab(
    words: dict[str, int], n: int
) -> None:
    """学習した語は [UNK] にならず、つなぐと元の語に戻る。"""
    vocab = ch19_wp.train_wordpiece(words, n)
    assert len(vocab) == len(set(vocab))
    for w in words:
        pieces = ch19_wp.encode_wordpiece(w, set(vocab))
        assert pieces != [ch19_wp.UNK]
        assert all(p in vocab for p in pieces)
        assert "".join(p.removeprefix("##") for p in pieces) == w
        assert all(p.startswith("##") for p in pieces[1:])


def test_wordpiece_prefers_pairs_that_always_occur_together() -> None:
    """BPE は最も多い組を、WordPiece は結びつきの強い組を先に選ぶ。"""
    words = {"ab": 10, "ac": 10, "xy": 1}
    assert ch19_bpe.train_bpe(words, 1) == [("a", "b")]
    assert ch19_wp.train_wordpiece(words, 1)[-1] == "xy"
