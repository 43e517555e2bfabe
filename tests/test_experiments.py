"""実験（seq2seq_experiment・lm_experiment・model_io）のテスト。

学習はどれも極小の設定（tiny）で回す。学習が「回り、記録と結果が
残る」ことを確かめるためのもので、何かを覚えることは期待しない。
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import Tensor

from easy_transformer._experiment import METRICS_FILE, RESULT_FILE
from easy_transformer.checkpoint import CheckpointError, save_checkpoint
from easy_transformer.gpt import GPT, GPTConfig
from easy_transformer.lm_experiment import (
    TINY_LM_CONFIG,
    TINY_MINILANG_LM_CONFIG,
    TINY_SAMPLING,
    TINY_TEXT_SAMPLING,
    generate_text,
    random_windows,
    train_minilang_lm,
    train_text_lm,
)
from easy_transformer.model_io import MODEL_FILE, load_model, save_model
from easy_transformer.seq2seq_experiment import (
    TASK_CONFIGS,
    exact_match,
    predict,
    seq2seq_config,
    train_seq2seq,
)
from easy_transformer.tasks import (
    BOS_ID,
    EOS_ID,
    TASKS,
    CharVocab,
    PairDataset,
)
from easy_transformer.tokenizer import ByteLevelBPETokenizer, CharTokenizer
from easy_transformer.training import read_metrics
from easy_transformer.transformer import Transformer, TransformerConfig

VOCAB = CharVocab("0123456789")


def tiny_transformer(vocab_size: int = len(VOCAB)) -> Transformer:
    torch.manual_seed(0)
    config = TransformerConfig(
        vocab_size,
        vocab_size,
        d_model=16,
        n_heads=2,
        n_encoder_layers=1,
        n_decoder_layers=1,
        d_ff=32,
        dropout=0.0,
        max_len=32,
    )
    return Transformer(config).eval()


class FixedOutputs(Transformer):
    """greedy_decode が、入力ごとに決めておいた文字列を返すモデル。"""

    def __init__(self, answers: dict[str, str]) -> None:
        super().__init__(tiny_transformer().config)
        self.answers = answers

    def greedy_decode(
        self,
        src: Tensor,
        bos_id: int,
        eos_id: int,
        max_new_tokens: int,
        src_padding_mask: Tensor | None = None,
    ) -> Tensor:
        rows = []
        for row in src:
            text = VOCAB.decode(row)  # パディングは decode が読み飛ばす
            ids = [bos_id, *VOCAB.encode(self.answers[text]), eos_id]
            # 本物と同じく、max_new_tokens で打ち切る
            ids = ids[: 1 + max_new_tokens]
            ids += [eos_id] * (1 + max_new_tokens - len(ids))
            rows.append(ids)
        return torch.tensor(rows)


def test_exact_match_counts_only_identical_outputs() -> None:
    pairs = [("12", "21"), ("345", "543"), ("6", "6"), ("78", "87")]
    model = FixedOutputs(
        {
            "12": "21",  # 正解
            "345": "54",  # 短すぎる（正解の接頭辞）
            "6": "6",  # 正解
            "78": "870",  # 長すぎる
        }
    )
    assert exact_match(model, pairs, VOCAB) == 0.5
    # PairDataset でも、小さなバッチに分けても同じ
    dataset = PairDataset(pairs, VOCAB)
    assert exact_match(model, dataset, VOCAB, batch_size=3) == 0.5


def test_exact_match_rejects_empty_dataset() -> None:
    with pytest.raises(ValueError, match="1 つもありません"):
        exact_match(FixedOutputs({}), [], VOCAB)


def test_predict_in_a_batch_equals_one_by_one() -> None:
    """パディングがマスクされていれば、まとめても出力は変わらない。"""
    model = tiny_transformer()
    sources = ["1", "234567", "89", "0123"]
    together = predict(model, sources, VOCAB, max_new_tokens=8)
    alone = [
        predict(model, [s], VOCAB, max_new_tokens=8)[0] for s in sources
    ]
    assert together == alone


def test_seq2seq_config_overrides_and_rejects_unknown_tasks() -> None:
    assert TASK_CONFIGS.keys() == TASKS.keys()
    config = seq2seq_config("rpn", max_steps=7)
    assert config.max_steps == 7
    assert config.d_model == TASK_CONFIGS["rpn"].d_model
    assert seq2seq_config("rpn", tiny=True).max_steps < config.max_steps
    with pytest.raises(ValueError, match="copy, reverse"):
        seq2seq_config("translate")


def test_train_seq2seq_writes_metrics_result_and_model(
    tmp_path: Path,
) -> None:
    config = seq2seq_config("rpn", tiny=True)
    result = train_seq2seq(
        "rpn", config=config, out_dir=tmp_path, progress=False
    )
    assert result.steps == config.max_steps
    assert 0.0 <= result.test_exact_match <= 1.0
    assert result.general_exact_match is not None
    assert result.val_loss is not None and result.val_loss > 0

    records = read_metrics(tmp_path / METRICS_FILE)
    assert [r["step"] for r in records] == [3, 6]
    assert all("val_loss" in r and "val_exact_match" in r for r in records)
    assert "train_loss" in records[-1]

    saved = json.loads((tmp_path / RESULT_FILE).read_text("utf-8"))
    assert saved["task"] == "rpn"
    assert saved["test_exact_match"] == result.test_exact_match
    assert saved["config"]["max_steps"] == config.max_steps
    assert saved["history"] == records
    assert {e["split"] for e in saved["examples"]} == {"test", "general"}

    loaded = load_model(tmp_path / MODEL_FILE)
    assert loaded.kind == "seq2seq"
    assert isinstance(loaded.model, Transformer)
    assert isinstance(loaded.codec, CharVocab)
    assert loaded.codec.itos == result.vocab.itos
    assert loaded.meta["test_exact_match"] == result.test_exact_match
    sources = [e["input"] for e in result.examples]
    assert predict(
        loaded.model, sources, loaded.codec, max_new_tokens=20
    ) == predict(result.model, sources, result.vocab, max_new_tokens=20)


def test_train_seq2seq_is_reproducible() -> None:
    config = replace(seq2seq_config("copy", tiny=True), eval_interval=0)
    a = train_seq2seq("copy", config=config, seed=1, progress=False)
    b = train_seq2seq("copy", config=config, seed=1, progress=False)
    assert a.history[-1]["train_loss"] == b.history[-1]["train_loss"]


def test_train_minilang_lm(tmp_path: Path) -> None:
    result = train_minilang_lm(
        config=TINY_MINILANG_LM_CONFIG,
        sampling=replace(TINY_SAMPLING, max_new_tokens=40),
        out_dir=tmp_path,
        progress=False,
    )
    assert result.acceptance_rate is not None
    assert 0.0 <= result.acceptance_rate <= 1.0
    assert result.n_generated_programs is not None
    if result.run_rate is not None:  # 評価できたものはパースもできた
        assert result.run_rate <= result.acceptance_rate
    assert result.sampling is not None
    assert result.sampling["temperature"] == TINY_SAMPLING.temperature
    assert (tmp_path / METRICS_FILE).exists()
    saved = json.loads((tmp_path / RESULT_FILE).read_text("utf-8"))
    assert saved["acceptance_rate"] == result.acceptance_rate
    loaded = load_model(tmp_path / MODEL_FILE)
    assert loaded.kind == "gpt"
    assert isinstance(loaded.codec, CharVocab)


@pytest.mark.parametrize(
    ("kind", "codec_type"),
    [("char", CharTokenizer), ("bpe", ByteLevelBPETokenizer)],
)
def test_train_text_lm(
    tmp_path: Path, kind: str, codec_type: type[object]
) -> None:
    text_file = tmp_path / "text.txt"
    text_file.write_text("to be or not to be, that is it.\n" * 30, "utf-8")
    result = train_text_lm(
        text_file,
        tokenizer=kind,
        vocab_size=270,
        config=TINY_LM_CONFIG,
        out_dir=tmp_path / "out",
        progress=False,
        sampling=replace(TINY_TEXT_SAMPLING, max_new_tokens=10),
    )
    assert result.tokenizer == kind
    assert result.val_loss is not None
    assert len(result.samples) == 1
    loaded = load_model(tmp_path / "out" / MODEL_FILE)
    assert isinstance(loaded.codec, codec_type)
    assert loaded.codec.encode("to be") == result.codec.encode("to be")


def test_train_text_lm_rejects_too_short_text(tmp_path: Path) -> None:
    text_file = tmp_path / "short.txt"
    text_file.write_text("abc", "utf-8")
    with pytest.raises(ValueError, match="短すぎます"):
        train_text_lm(text_file, config=TINY_LM_CONFIG, progress=False)


def test_random_windows_shifts_targets_by_one() -> None:
    ids = torch.arange(100)
    torch.manual_seed(0)
    x, y = random_windows(ids, block_size=8, batch_size=5)()
    assert x.shape == y.shape == (5, 8)
    assert torch.equal(y, x + 1)


def test_generate_text_beyond_block_size_is_deterministic() -> None:
    vocab = CharVocab("ab\n")
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(
            vocab_size=len(vocab),
            block_size=8,
            n_layers=1,
            n_heads=1,
            d_model=8,
        )
    )
    args = {"max_new_tokens": 30, "n_samples": 3}
    first = generate_text(model, vocab, "a", seed=1, **args)
    again = generate_text(model, vocab, "a", seed=1, **args)
    assert len(first) == 3
    assert first == again
    greedy = generate_text(model, vocab, "a", do_sample=False, **args)
    assert len(set(greedy)) == 1  # 引かなければ 3 本とも同じ
    with pytest.raises(ValueError, match="プロンプトが空"):
        generate_text(model, vocab, "")


def test_load_model_rejects_other_checkpoints(tmp_path: Path) -> None:
    trainer_state = tmp_path / "trainer.pt"
    save_checkpoint(trainer_state, {"model": {}, "optimizer": {}})
    with pytest.raises(CheckpointError, match="モデルの設定が入って"):
        load_model(trainer_state)

    # 設定と重みが食い違う（別のモデルの重み）
    broken = tmp_path / "broken.pt"
    save_model(broken, tiny_transformer(), VOCAB)
    state = torch.load(broken, weights_only=True)
    state["model_config"]["d_model"] = 32
    save_checkpoint(broken, state)
    with pytest.raises(CheckpointError, match="壊れています"):
        load_model(broken)


def test_greedy_decode_stub_matches_real_shapes() -> None:
    """FixedOutputs が本物の greedy_decode と同じ形を返すこと。"""
    src = torch.tensor([VOCAB.encode("12"), VOCAB.encode("34")])
    real = tiny_transformer().greedy_decode(src, BOS_ID, EOS_ID, 4)
    fake = FixedOutputs({"12": "1", "34": "3"}).greedy_decode(
        src, BOS_ID, EOS_ID, 4
    )
    assert fake.shape[0] == real.shape[0]
    assert fake.shape[1] <= 1 + 4 and real.shape[1] <= 1 + 4
    assert (fake[:, 0] == BOS_ID).all() and (real[:, 0] == BOS_ID).all()
