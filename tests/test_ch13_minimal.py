"""第13章で空のファイルから書いた GPT が、完成品と同じ関数を計算すること。

listings/ch13/ は読者が自分で書く縮小版で、easy_transformer.gpt.GPT とは
別に持つ（GUIDE の「二か所で保守しない」の例外）。その代わりに、重みを
写せばロジットが一致することを、ここで縛る。
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from easy_transformer.gpt import GPT

cfg = importlib.import_module("listings.ch13.01_config")
mini = importlib.import_module("listings.ch13.05_model")
tr = importlib.import_module("listings.ch13.06_train")

cmp = importlib.import_module("listings.ch13.07_compare")
name_map = cmp.name_map
package_config = cmp.package_config

CONFIG = cfg.Config(
    vocab_size=13, block_size=24, d_model=32, n_heads=4, n_layers=3
)


def randomized_pair(seed: int = 0) -> tuple[nn.Module, GPT]:
    ours, theirs = cmp.randomized_pair(CONFIG, seed)
    return ours, theirs


def random_ids(
    seed: int = 1, batch: int = 4, seq: int = 20
) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(CONFIG.vocab_size, (batch, seq), generator=gen)


def test_name_map_is_a_bijection() -> None:
    """名前の対応表が、両方のモデルのすべての重みを 1 対 1 で結ぶ。"""
    ours = mini.GPT(CONFIG)
    theirs = GPT(package_config(CONFIG))
    names = name_map(CONFIG.n_layers)
    assert set(names) == set(ours.state_dict())
    assert sorted(names.values()) == sorted(theirs.state_dict())
    for a, b in names.items():
        assert ours.state_dict()[a].shape == theirs.state_dict()[b].shape
    # パラメータ（共有を 1 つと数える）の数も同じ
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in theirs.parameters()
    )


def test_same_function_as_the_package() -> None:
    ours, theirs = randomized_pair()
    ids = random_ids()
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), theirs(ids))
        # 長さ 1 と最大長でも
        torch.testing.assert_close(ours(ids[:, :1]), theirs(ids[:, :1]))
        full = random_ids(seq=CONFIG.block_size)
        torch.testing.assert_close(ours(full), theirs(full))


def test_same_gradients_as_the_package() -> None:
    """同じ関数なら、同じ損失の勾配も（対応する名前どうしで）一致する。"""
    ours, theirs = randomized_pair()
    x, y = tr.make_batch(["314", "2718", "1"])
    tr.loss_fn(ours, x, y).backward()
    tr.loss_fn(theirs, x, y).backward()
    ours_grads = {n: p.grad for n, p in ours.named_parameters()}
    theirs_grads = {n: p.grad for n, p in theirs.named_parameters()}
    for a, b in name_map(CONFIG.n_layers).items():
        if a == "head.weight":  # 共有の重みは emb.tok.table.weight に入る
            continue
        torch.testing.assert_close(
            ours_grads[a], theirs_grads[b], rtol=1e-4, atol=1e-5
        )


def test_same_greedy_output_as_the_package() -> None:
    ours, theirs = randomized_pair()
    prompt = torch.tensor([tr.encode("31415|")])
    out = tr.greedy(ours, prompt, 6)
    expected = theirs.generate(prompt, 6)[:, prompt.size(1) :]
    assert torch.equal(out, expected)


@pytest.mark.parametrize(
    "name",
    [
        "emb.pos.weight",
        "blocks.0.ln1.bias",
        "blocks.1.attn.k.weight",
        "blocks.2.mlp.down.bias",
        "ln_f.weight",
    ],
)
def test_a_broken_weight_is_detected(name: str) -> None:
    """1 つの重みの 1 要素だけを写し間違えると、比較が落ちる。"""
    ours, theirs = randomized_pair()
    with torch.no_grad():
        ours.state_dict()[name].view(-1)[0] += 0.5
    ids = random_ids()
    with torch.no_grad(), pytest.raises(AssertionError):
        torch.testing.assert_close(ours(ids), theirs(ids))


def test_exact_gelu_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    """GELU を tanh 近似でなく厳密な式にすると、一致しなくなる。"""
    ours, theirs = randomized_pair()
    exact = torch.nn.functional.gelu
    blk = importlib.import_module("listings.ch13.04_block")
    # 縮小版のモジュールが見る F だけを差し替える（完成品には触れない）
    monkeypatch.setattr(
        blk, "F", SimpleNamespace(gelu=lambda x, approximate: exact(x))
    )
    ids = random_ids()
    with torch.no_grad(), pytest.raises(AssertionError):
        torch.testing.assert_close(ours(ids), theirs(ids))


def test_missing_causal_mask_is_detected() -> None:
    """因果マスクを外すと、一致しなくなる。"""
    ours, theirs = randomized_pair()
    ids = random_ids()
    with torch.no_grad():
        for block in ours.blocks:
            block.attn.forward = _no_mask(block.attn)
        with pytest.raises(AssertionError):
            torch.testing.assert_close(ours(ids), theirs(ids))


def _no_mask(attn: nn.Module):  # type: ignore[no-untyped-def]
    def forward(x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = attn.n_heads

        def split(z: torch.Tensor) -> torch.Tensor:
            return z.view(b, t, h, d // h).transpose(1, 2)

        q, k, v = split(attn.q(x)), split(attn.k(x)), split(attn.v(x))
        w = (q @ k.transpose(-2, -1) / (d // h) ** 0.5).softmax(dim=-1)
        out = (w @ v).transpose(1, 2).reshape(b, t, d)
        return attn.proj(out)  # type: ignore[no-any-return]

    return forward


def test_dropout_only_acts_in_training() -> None:
    """ドロップアウトは train() のときだけ働き、eval() では恒等写像。"""
    c = cfg.Config(dropout=0.5)
    model = mini.GPT(c)
    ids = torch.tensor([tr.encode("314|314")])
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(ids), model(ids))
        model.train()
        assert not torch.equal(model(ids), model(ids))
