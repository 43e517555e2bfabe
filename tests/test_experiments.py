"""実験（seq2seq_experiment・lm_experiment・model_io）のテスト。

学習はどれも極小の設定（tiny）で回す。学習が「回り、記録と結果が
残る」ことを確かめるためのもので、何かを覚えることは期待しない。
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from easy_transformer._experiment import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    RESULT_FILE,
)
from easy_transformer.checkpoint import CheckpointError, save_checkpoint
from easy_transformer.gpt import GPT, GPTConfig
from easy_transformer.lm_experiment import (
    TINY_LM_CONFIG,
    TINY_MINILANG_LM_CONFIG,
    TINY_SAMPLING,
    TINY_TEXT_SAMPLING,
    generate_text,
    random_windows,
    score_programs,
    train_minilang_lm,
    train_text_lm,
)
from easy_transformer.model_io import MODEL_FILE, load_model, save_model
from easy_transformer.seq2seq_experiment import (
    TASK_CONFIGS,
    LengthGroupedBatches,
    decode_output,
    exact_match,
    predict,
    seq2seq_config,
    train_seq2seq,
)
from easy_transformer.tasks import (
    BOS_ID,
    EOS_ID,
    TASKS,
    PairDataset,
    make_vocab,
)
from easy_transformer.tokenizer import ByteLevelBPETokenizer, CharTokenizer
from easy_transformer.training import Trainer, read_metrics
from easy_transformer.transformer import Transformer, TransformerConfig

VOCAB = make_vocab(["0123456789"])


def tiny_gpt(vocab_size: int) -> GPT:
    """ブロック長 8 の、学習していない極小の GPT。"""
    torch.manual_seed(0)
    return GPT(
        GPTConfig(
            vocab_size=vocab_size,
            block_size=8,
            n_layers=1,
            n_heads=1,
            d_model=8,
        )
    )


def tiny_transformer(vocab_size: int = VOCAB.vocab_size) -> Transformer:
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
            # パディングは読み飛ばす
            text = VOCAB.decode(row.tolist(), skip_special_tokens=True)
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
    assert isinstance(loaded.codec, CharTokenizer)
    assert loaded.codec.id_to_token == result.vocab.id_to_token
    assert loaded.codec.special_tokens == result.vocab.special_tokens
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
    assert isinstance(loaded.codec, CharTokenizer)
    assert result.steps == TINY_MINILANG_LM_CONFIG.max_steps


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
    vocab = make_vocab(["ab\n"])
    model = tiny_gpt(vocab.vocab_size)
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


def test_length_grouped_batches_split_across_ranks() -> None:
    """torchrun の各ランクは、重ならないバッチを同じ数だけ受け取る。"""
    lengths = [i % 17 for i in range(1000)]
    world = 3

    def batches(rank: int) -> list[list[int]]:
        torch.manual_seed(0)  # どのランクも同じ種（Trainer と同じ）
        sampler = LengthGroupedBatches(
            lengths, batch_size=8, group=5, rank=rank, world_size=world
        )
        out = list(sampler)
        assert len(out) == len(sampler)
        return out

    single = LengthGroupedBatches(lengths, batch_size=8, group=5)
    per_rank = [batches(r) for r in range(world)]
    assert {len(b) for b in per_rank} == {len(single) // world}
    seen = [i for b in per_rank for batch in b for i in batch]
    assert len(seen) == len(set(seen))  # ランクの間で重ならない
    # 1 プロセスのときと同じ列を、k 番目のバッチはランク k mod 3 へ配る
    torch.manual_seed(0)
    whole = list(single)
    n = len(single) // world
    for rank in range(world):
        assert per_rank[rank] == whole[rank::world][:n]


def test_length_grouped_batches_reads_torchrun_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    sampler = LengthGroupedBatches([1] * 64, batch_size=4, group=2)
    assert (sampler.rank, sampler.world_size) == (1, 2)
    assert len(sampler) == 8
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="rank=2 は 0〜1 の範囲"):
        LengthGroupedBatches([1] * 64, batch_size=4)


def test_decode_output_stops_at_eos() -> None:
    ids = [BOS_ID, *VOCAB.encode("12"), EOS_ID, *VOCAB.encode("3"), EOS_ID]
    assert decode_output(VOCAB, ids) == "12"
    assert decode_output(VOCAB, [BOS_ID, *VOCAB.encode("45")]) == "45"


def test_load_model_reads_old_char_vocab_format(tmp_path: Path) -> None:
    """CharVocab の頃に保存した model.pt（文字の一覧だけ）も読める。"""
    path = tmp_path / "old.pt"
    model = tiny_transformer()
    save_model(path, model, VOCAB)
    state = torch.load(path, weights_only=True)
    state["tokenizer"] = {"type": "CharVocab", "chars": list("0123456789")}
    save_checkpoint(path, state)
    loaded = load_model(path)
    assert loaded.codec.id_to_token == VOCAB.id_to_token
    assert loaded.codec.special_tokens == VOCAB.special_tokens


def test_load_model_reports_what_is_broken(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    save_model(path, tiny_transformer(), VOCAB)
    state = torch.load(path, weights_only=True)
    del state["tokenizer"]
    save_checkpoint(path, state)
    with pytest.raises(CheckpointError, match="無いもの: tokenizer"):
        load_model(path)
    state = torch.load(path, weights_only=True)
    state["tokenizer"] = {"type": "CharTokenizer", "json": "{"}
    state["model_config"]["n_experts"] = 4
    save_checkpoint(path, state)
    with pytest.raises(CheckpointError, match="知らない設定: n_experts"):
        load_model(path)
    del state["model_config"]["n_experts"]
    save_checkpoint(path, state)
    with pytest.raises(CheckpointError, match="JSON として読めません"):
        load_model(path)


def test_score_programs() -> None:
    lines = ["x = 1; x", "x = 1; x", "y", "1 +", "1 / 0"]
    scores = score_programs(lines, known={"x = 1; x"})
    assert scores["n_generated_programs"] == 5
    assert scores["acceptance_rate"] == 4 / 5  # "1 +" だけ受理しない
    assert scores["novel_rate"] == 2 / 4  # "y" と "1 / 0"
    # "y"（未定義）と "1 / 0"（0 除算）はパースできても評価で止まる
    assert scores["run_rate"] == 2 / 5


def test_train_text_lm_resume_continues_from_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """途中で止まっても resume=True で続けられ、止めずに学習した結果と同じ。"""
    text_file = tmp_path / "text.txt"
    text_file.write_text("to be or not to be, that is it.\n" * 30, "utf-8")
    config = replace(TINY_LM_CONFIG, max_steps=8, eval_interval=2)
    args: dict[str, Any] = {
        "config": config,
        "progress": False,
        "sampling": replace(TINY_TEXT_SAMPLING, max_new_tokens=0),
    }
    fresh = train_text_lm(text_file, out_dir=tmp_path / "fresh", **args)

    # 5 ステップ目で止める（途中経過は 4 ステップ目のものが残る）
    original = Trainer.train_step

    def stop_at_5(self: Trainer) -> Any:
        if self.step == 5:
            raise KeyboardInterrupt
        return original(self)

    out = tmp_path / "out"
    with monkeypatch.context() as m:
        m.setattr(Trainer, "train_step", stop_at_5)
        with pytest.raises(KeyboardInterrupt):
            train_text_lm(text_file, out_dir=out, **args)
    assert (out / CHECKPOINT_FILE).exists()
    assert not (out / MODEL_FILE).exists()

    resumed = train_text_lm(text_file, out_dir=out, resume=True, **args)
    assert resumed.steps == 8

    # 記録は最初のステップから（再開の前の分も指標のファイルから読む）。
    # train_loss は前回の記録からの平均で、再開をまたぐ区間は平均の
    # 範囲が違うので、検証の損失で比べる
    def losses(history: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [
            (r["step"], r["val_loss"]) for r in history if "val_loss" in r
        ]

    assert losses(resumed.history) == losses(fresh.history)
    for a, b in zip(
        resumed.model.parameters(), fresh.model.parameters(), strict=True
    ):
        assert torch.equal(a, b)


def test_generate_text_stop_and_repetition_penalty() -> None:
    vocab = make_vocab(["ab\n"])
    model = tiny_gpt(vocab.vocab_size)
    args: dict[str, Any] = {"max_new_tokens": 30, "n_samples": 4, "seed": 2}
    full = generate_text(model, vocab, "a", **args)
    cut = generate_text(model, vocab, "a", stop=["b\n", "ba"], **args)
    for whole, text in zip(full, cut, strict=True):
        ends = [i for s in ("b\n", "ba") if (i := whole.find(s)) >= 0]
        assert text == whole[: min(ends)] if ends else text == whole
    # 繰り返しペナルティは GPT.generate と同じ（1 回で作れる長さなら一致）
    ids = torch.tensor([vocab.encode("a")])
    expected = model.generate(ids, 6, repetition_penalty=3.0)[0, 1:]
    greedy = generate_text(
        model,
        vocab,
        "a",
        max_new_tokens=6,
        do_sample=False,
        repetition_penalty=3.0,
    )
    assert greedy == [
        vocab.decode(expected.tolist(), skip_special_tokens=True)
    ]
