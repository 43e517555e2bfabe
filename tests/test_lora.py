"""LoRA（easy_transformer.lora）とファインチューニングの部品のテスト。

確かめる性質:

- 包んだ直後は元の層・元のモデルと出力が一致する（B が 0 なので）。
- 学習されるのは A と B（と後から付けた頭）だけで、凍結した重みには
  勾配が流れず、学習しても変わらない。
- merge の前後で出力が一致する。
- わざと壊した版（B を乱数で初期化、scale の付け忘れ）はこれらの
  検査で落ちる。
- 層ごとの学習率のグループが、学習するパラメータを 1 度ずつ覆う。
- 分類の正解が評価器・パーサで決まり、正解が半々になる。
"""

from __future__ import annotations

import random

import pytest
import torch
from torch import Tensor, nn

from easy_transformer.finetune import (
    GPTClassifier,
    encode_examples,
    layerwise_param_groups,
    make_syntax_examples,
    make_undefined_variable_examples,
    replace_one_reference,
    uses_undefined_variable,
)
from easy_transformer.gpt import GPT, GPTConfig
from easy_transformer.lora import (
    LoRALinear,
    add_lora,
    count_trainable,
    merge_lora,
)
from easy_transformer.tasks import (
    accepts,
    make_program_splits,
    make_vocab,
    to_corpus,
)


def tiny_gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(
        GPTConfig(
            vocab_size=11, block_size=8, n_layers=2, n_heads=2, d_model=8
        )
    )


def ids() -> Tensor:
    return torch.randint(
        11, (3, 8), generator=torch.Generator().manual_seed(1)
    )


class RandomBLoRA(LoRALinear):
    """壊した版: B も乱数で初期化する（最初から元の出力と違う）。"""

    def __init__(self, base: nn.Linear, r: int, alpha: float) -> None:
        super().__init__(base, r, alpha)
        nn.init.normal_(self.lora_B)


class NoScaleLoRA(LoRALinear):
    """壊した版: 差分に scale を掛け忘れる。"""

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.base(x) + (x @ self.lora_A.t()) @ self.lora_B.t()
        return out


def test_starts_equal_to_base() -> None:
    torch.manual_seed(0)
    base = nn.Linear(6, 5)
    x = torch.randn(4, 6)
    assert torch.equal(LoRALinear(base, 2, 4.0)(x), base(x))
    assert not torch.allclose(RandomBLoRA(base, 2, 4.0)(x), base(x))


def test_model_starts_equal_and_only_lora_is_trainable() -> None:
    model = tiny_gpt()
    before = model(ids())
    wrapped = add_lora(model, r=2, alpha=4.0)
    assert wrapped == [
        f"blocks.{i}.self_attn.{n}_proj" for i in range(2) for n in "qv"
    ]
    assert torch.equal(model(ids()), before)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        f"blocks.{i}.self_attn.{n}_proj.lora_{m}"
        for i in range(2)
        for n in "qv"
        for m in "AB"
    }
    # 2 層 × 2 つの射影 × (A: 2×8 + B: 8×2)
    assert count_trainable(model) == 2 * 2 * (2 * 8 + 8 * 2)


def test_head_is_trainable_and_gradients_skip_frozen_weights() -> None:
    gpt = tiny_gpt()
    add_lora(gpt, r=2, alpha=4.0)
    model = GPTClassifier(gpt, 3)
    frozen = {n: p.clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-2
    )
    for _ in range(3):
        loss = model(ids(), torch.tensor([8, 5, 3])).logsumexp(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for name, p in model.named_parameters():
        if "lora_" in name or name.startswith("head."):
            assert p.requires_grad
            assert not torch.equal(p, frozen[name]), name
        else:
            assert p.grad is None, name
            assert torch.equal(p, frozen[name]), name


def test_merge_keeps_outputs() -> None:
    model = tiny_gpt()
    add_lora(model, r=2, alpha=4.0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_B.normal_()  # 学習した後の状態を作る
    before = model(ids())
    assert merge_lora(model) == 4
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    torch.testing.assert_close(model(ids()), before, atol=1e-5, rtol=1e-5)
    assert count_trainable(model) == 0


def test_forgetting_scale_breaks_merge() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 6)
    for cls, ok in ((LoRALinear, True), (NoScaleLoRA, False)):
        layer = cls(nn.Linear(6, 5), 2, 8.0)
        with torch.no_grad():
            layer.lora_B.normal_()
        same = torch.allclose(layer(x), layer.merged()(x), atol=1e-5)
        assert same is ok, cls.__name__


def test_add_lora_rejects_unknown_targets() -> None:
    with pytest.raises(ValueError, match="見つかりません"):
        add_lora(tiny_gpt(), r=1, alpha=1.0, targets=("nothing",))


def test_classifier_ignores_right_padding() -> None:
    model = GPTClassifier(tiny_gpt(), 2)
    x = ids()
    lengths = torch.tensor([5, 5, 5])
    padded = x.clone()
    padded[:, 5:] = 0
    torch.testing.assert_close(model(x, lengths), model(padded, lengths))


def test_layerwise_groups_cover_each_parameter_once() -> None:
    model = GPTClassifier(tiny_gpt(), 2)
    groups = layerwise_param_groups(model, lr=1e-3, decay=0.5)
    seen = [id(p) for g in groups for p in g["params"]]
    assert len(seen) == len(set(seen))
    assert set(seen) == {id(p) for p in model.parameters()}
    # 頭・2 層目・1 層目・埋め込みの 4 段で、下ほど小さい
    assert [g["lr"] for g in groups] == [1e-3, 5e-4, 2.5e-4, 1.25e-4]


def test_undefined_variable_labels() -> None:
    assert uses_undefined_variable("x = 1; x + 2") is False
    assert uses_undefined_variable("x = 1; y + 2") is True
    assert uses_undefined_variable("1 / 0") is None
    rng = random.Random(0)
    assert replace_one_reference("3 + 4", rng) is None
    new = replace_one_reference("x = 1; x + 2", rng)
    assert new in {"x = 1; y + 2", "x = 1; z + 2"}


def test_examples_are_balanced_and_encoded() -> None:
    progs = make_program_splits(seed=0, n_train=400, n_valid=0).train
    examples = make_undefined_variable_examples(progs, 40, seed=0)
    assert sum(e.label for e in examples) == 20
    for e in examples:
        assert uses_undefined_variable(e.src) is bool(e.label)
    vocab = make_vocab([to_corpus(progs)])
    x, lengths, labels = encode_examples(examples, vocab)
    assert x.shape == (40, int(lengths.max()))
    assert vocab.decode(x[0, : lengths[0]].tolist()) == examples[0].src
    assert labels.tolist() == [e.label for e in examples]


def test_syntax_examples_are_balanced_and_labelled_by_the_parser() -> None:
    progs = make_program_splits(seed=0, n_train=200, n_valid=0).train
    examples = make_syntax_examples(progs, 40, seed=0)
    assert sum(e.label for e in examples) == 20
    for e in examples:
        assert accepts(e.src) is (e.label == 0)
        # 元のプログラムか、空白以外を 1 文字消したもの
        assert e.src in progs or any(
            len(e.src) == len(p) - 1 for p in progs
        )
