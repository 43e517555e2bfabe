"""easy_transformer.quantization のテスト。

正しさは参照実装との一致で確かめる。

- 量子化そのもの: torch.ao の observer が計算する scale と、
  PyTorch の `torch.quantize_per_channel` が作る整数値に一致すること。
- 層とモデル: 逆量子化した重みを元のモデルに代入した「参照モデル」と
  出力が一致すること。
- 元のモデルとの差: 量子化の定義から導いた誤差の上限に収まること。
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear
from torch.ao.quantization.observer import PerChannelMinMaxObserver

from easy_transformer.quantization import (
    QMAX,
    QuantizedLinear,
    dequantize,
    model_size_bytes,
    output_error,
    quantize_linear_layers,
    quantize_per_channel,
    torch_ao_quantize_dynamic,
)

AO_DEPRECATION = "torch.ao.quantization is deprecated"

# PyTorch 2.13 では量子化済みテンソル型（torch.qint8 など）を作るたびに
# 非推奨の UserWarning が出る（pytorch/pytorch#184982）。参照実装として
# 使う torch.quantize_per_channel と torch.ao の内部から出るもので、
# 自前の実装は出さない。C++ 側で 1 プロセスに 1 回しか出ないため、
# どのテストで出るかが実行順で変わる。ここで一括して無視する。
pytestmark = pytest.mark.filterwarnings(
    "ignore:torch.quantize_per_tensor.*:UserWarning"
)


def ao_quantize(model: nn.Module) -> Any:
    """torch.ao の動的量子化。PyTorch 2.13 では非推奨の警告が出る。

    量子化した層の `weight()` などを読むので、型は Any で返す。
    """
    with pytest.warns(DeprecationWarning, match=AO_DEPRECATION):
        return torch_ao_quantize_dynamic(model)


def make_mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 32)
    ).eval()


def make_encoder_layer(batch_first: bool) -> nn.TransformerEncoderLayer:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(
        d_model=64,
        nhead=4,
        dim_feedforward=128,
        dropout=0.0,
        batch_first=batch_first,
    )
    return layer.eval()


def with_dequantized_weights(model: nn.Module) -> nn.Module:
    """`nn.Linear` の重みを「量子化して戻した」値に替えた float のモデル。

    自前の int8 モデルの参照実装になる。同じ層だけを替えるように、
    quantize_linear_layers と同じ規則（型がちょうど nn.Linear）で選ぶ。

    これを使うテストは接続のテスト: 参照を自前の quantize_per_channel
    で作るが、その関数自体は torch.ao の観測器と
    torch.quantize_per_channel との完全一致で独立に確かめてある
    （test_scale_matches_torch_ao_observer と
    test_quantize_matches_torch_quantize_per_channel）。
    """
    ref = copy.deepcopy(model).eval()
    for module in ref.modules():
        if type(module) is nn.Linear:
            q, scale = quantize_per_channel(module.weight)
            module.weight.data = dequantize(q, scale)
    return ref


# ---- 量子化と逆量子化 ------------------------------------------------


def random_weight() -> Tensor:
    torch.manual_seed(0)
    w = torch.randn(48, 40) * torch.logspace(-3, 1, 48)[:, None]
    w[5] = 0.0  # すべて 0 の行（scale が 0 にならないこと）
    return w


def test_scale_matches_torch_ao_observer() -> None:
    w = random_weight()
    _, scale = quantize_per_channel(w)
    observer = PerChannelMinMaxObserver(
        ch_axis=0,
        dtype=torch.qint8,
        qscheme=torch.per_channel_symmetric,
        quant_min=-QMAX,
        quant_max=QMAX,
    )
    observer(w)
    ref_scale, ref_zero_point = observer.calculate_qparams()
    torch.testing.assert_close(scale, ref_scale, rtol=0, atol=0)
    assert torch.all(ref_zero_point == 0)  # 対称量子化


def test_quantize_matches_torch_quantize_per_channel() -> None:
    w = random_weight()
    q, scale = quantize_per_channel(w)
    zero_points = torch.zeros(w.shape[0], dtype=torch.long)
    ref = torch.quantize_per_channel(
        w, scale.double(), zero_points, 0, torch.qint8
    )
    assert q.dtype == torch.int8
    assert torch.equal(q, ref.int_repr())
    assert torch.equal(dequantize(q, scale), ref.dequantize())


def test_dequantize_error_is_at_most_half_scale_per_row() -> None:
    w = random_weight()
    q, scale = quantize_per_channel(w)
    err = (dequantize(q, scale) - w).abs().amax(dim=1)
    # 定義上の上限は scale / 2。float32 の割り算・掛け算の丸め
    # （相対 2^-24 程度を数回）の分だけ上限にわずかな余裕を持たせる。
    bound = scale / 2 + w.abs().amax(dim=1) * 4 * torch.finfo().eps
    assert torch.all(err <= bound)
    assert torch.all(q.abs() <= QMAX)


def test_quantize_accepts_bfloat16_and_higher_rank() -> None:
    w = random_weight().reshape(48, 8, 5)
    q, scale = quantize_per_channel(w)
    q2, scale2 = quantize_per_channel(w.reshape(48, 40))
    assert torch.equal(q.reshape(48, 40), q2)
    assert torch.equal(scale, scale2)
    qb, scaleb = quantize_per_channel(w.to(torch.bfloat16))
    assert qb.dtype == torch.int8 and scaleb.dtype == torch.float32


# ---- QuantizedLinear --------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_quantized_linear_matches_f_linear(bias: bool) -> None:
    torch.manual_seed(0)
    linear = nn.Linear(40, 24, bias=bias)
    layer = QuantizedLinear.from_linear(linear)
    x = torch.randn(7, 3, 40)
    q, scale = quantize_per_channel(linear.weight)
    expected = F.linear(x, dequantize(q, scale), linear.bias)
    assert torch.equal(layer(x), expected)
    assert torch.equal(layer.weight_int8, q)
    assert list(layer.parameters()) == []  # 推論専用: 学習する値はない


def test_quantized_linear_state_dict_round_trip() -> None:
    torch.manual_seed(0)
    layer = QuantizedLinear.from_linear(nn.Linear(16, 8))
    fresh = QuantizedLinear(16, 8)
    fresh.load_state_dict(layer.state_dict())
    x = torch.randn(4, 16)
    assert torch.equal(fresh(x), layer(x))
    assert set(layer.state_dict()) == {
        "weight_int8",
        "weight_scale",
        "bias",
    }


def test_single_linear_error_bound_own_and_torch_ao() -> None:
    """1 層なら、元の出力との差の上限が量子化の定義から計算できる。

    y = W x の重みに誤差 dW、入力に誤差 dx が乗ると
    |dy_i| <= sum_j |dW_ij| |x_j| + sum_j |W_ij + dW_ij| |dx_j|。

    - 自前: |dW_ij| <= s_i / 2（行 i の scale）、dx = 0。
    - torch.ao: |dW_ij| <= s_w / 2（テンソル全体の scale）。入力は
      呼び出しごとに [min(x, 0), max(x, 0)] を 7 bit（0〜127、
      reduce_range=True）で量子化するので刻みは s_x = 幅 / 127。
      丸めで s_x / 2、零点の整数への丸めで端が最大 s_x / 2 ずれるので
      |dx_j| <= s_x とする。
    """
    torch.manual_seed(0)
    linear = nn.Linear(96, 48).eval()
    x = torch.randn(32, 96)
    # torch.ao は子の層しか置き換えないので、1 段包んでから渡す
    ao = ao_quantize(nn.Sequential(linear))[0]
    own = quantize_linear_layers(linear)
    assert isinstance(own, QuantizedLinear)
    with torch.no_grad():
        y = linear(x)
        dy_own = (own(x) - y).abs()
        dy_ao = (ao(x) - y).abs()

    _, scale = quantize_per_channel(linear.weight)
    x_l1 = x.abs().sum(dim=1, keepdim=True)  # (batch, 1)
    slack = 1e-5  # float32 の和の丸め
    bound_own = scale[None, :] / 2 * x_l1 + slack
    assert torch.all(dy_own <= bound_own)

    s_w = ao.weight().q_scale()
    s_x = (x.max().clamp(min=0) - x.min().clamp(max=0)) / 127
    w_abs = linear.weight.detach().abs() + s_w / 2
    bound_ao = s_w / 2 * x_l1 + s_x * w_abs.sum(dim=1)[None, :] + slack
    assert torch.all(dy_ao <= bound_ao)


def test_mlp_error_bound_own() -> None:
    """2 層の MLP でも、ReLU が差を広げない（1-リプシッツ）ことを使えば
    1 層目の誤差の上限を 2 層目に伝えて上限が計算できる。"""
    mlp: Any = make_mlp()
    x = torch.randn(32, 64)
    with torch.no_grad():
        dy = (quantize_linear_layers(mlp)(x) - mlp(x)).abs()
        lin1, lin2 = mlp[0], mlp[2]
        _, s1 = quantize_per_channel(lin1.weight)
        q2, s2 = quantize_per_channel(lin2.weight)
        h = torch.relu(lin1(x))
        dh = s1[None, :] / 2 * x.abs().sum(dim=1, keepdim=True)
        w2q = dequantize(q2, s2).abs()
        bound = (
            s2[None, :] / 2 * h.abs().sum(dim=1, keepdim=True)
            + dh @ w2q.T
            + 1e-5
        )
    assert torch.all(dy <= bound)


# ---- モデル全体 --------------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True])
def test_quantized_model_matches_dequantized_reference(
    batch_first: bool,
) -> None:
    """int8 モデルの出力は、逆量子化した重みを代入したモデルと一致する。

    batch_first=True の TransformerEncoderLayer は推論時に高速経路を通り、
    `linear1.weight` を直接読む。QuantizedLinear の `weight` 属性で動くこと
    も、ここで確かめる。
    """
    layer = make_encoder_layer(batch_first)
    x = torch.randn(3, 10, 64)
    with torch.no_grad():
        got = quantize_linear_layers(layer)(x)
        expected = with_dequantized_weights(layer)(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)

    mlp = make_mlp()
    xm = torch.randn(8, 64)
    with torch.no_grad():
        got = quantize_linear_layers(mlp)(xm)
        expected = with_dequantized_weights(mlp)(xm)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_same_layers_are_replaced_as_torch_ao() -> None:
    """自前と torch.ao は、同じ層（型がちょうど nn.Linear）を量子化する。"""
    layer = make_encoder_layer(batch_first=False)
    own = quantize_linear_layers(layer)
    ao = ao_quantize(layer)

    def replaced(model: nn.Module) -> set[str]:
        return {
            name
            for name, m in model.named_modules()
            if isinstance(m, (QuantizedLinear, DynamicQuantizedLinear))
        }

    assert replaced(own) == replaced(ao) == {"linear1", "linear2"}
    # 元のモデルは変わらない
    assert type(layer.linear1) is nn.Linear


# 出力の相対誤差（差のノルム / 出力のノルム）の許容値。
# 8 bit の刻みは各行（torch.ao は行列全体）の最大値の 1/127。
# 丸め誤差を刻みの幅の一様分布とみると標準偏差は刻みの 1/sqrt(12)。
# 正規分布に近い重みでは最大値は標準偏差のおよそ 4〜5 倍なので、
# 重みの相対誤差の目安は 5 / 127 / sqrt(12) ≒ 1.1%。出力は重みと入力の
# 積の和で、誤差の相対的な大きさは和をとってもほぼ変わらない。
# torch.ao は入力も 7 bit で量子化するので誤差がさらに加わる。
# 目安の 3 倍に余裕をとって 3.5% とする（失敗するなら何かが壊れている:
# 量子化しない場合の「出力をすべて 0 にする」誤りは相対誤差 100%）。
REL_TOL = 5 / QMAX / math.sqrt(12) * 3


@pytest.mark.parametrize("kind", ["mlp", "encoder_layer"])
def test_own_and_torch_ao_are_close_to_float(kind: str) -> None:
    model: nn.Module
    if kind == "mlp":
        model, x = make_mlp(), torch.randn(32, 64)
    else:
        model, x = make_encoder_layer(False), torch.randn(10, 4, 64)
    with torch.no_grad():
        y = model(x)
        own = output_error(y, quantize_linear_layers(model)(x))
        ao = output_error(y, ao_quantize(model)(x))
    assert 0 < own.relative < REL_TOL
    assert 0 < ao.relative < REL_TOL


def test_torch_ao_warning_points_to_caller() -> None:
    """警告は握りつぶされず、呼んだ側の行から出る。"""
    with pytest.warns(DeprecationWarning, match=AO_DEPRECATION) as record:
        torch_ao_quantize_dynamic(make_mlp())
    deprecations = [
        r for r in record if issubclass(r.category, DeprecationWarning)
    ]
    assert len(deprecations) == 1  # 内部の 2 か所から出る同じ警告を 1 回に
    assert deprecations[0].filename == __file__


def test_torch_ao_input_is_not_modified() -> None:
    mlp: Any = make_mlp()
    ao = ao_quantize(mlp)
    assert type(mlp[0]) is nn.Linear
    assert type(ao[0]) is not nn.Linear


# ---- 重み共有と skip ---------------------------------------------------


class TiedLM(nn.Module):
    """埋め込みと出力層が重みを共有する、GPT の形の小さなモデル。"""

    def __init__(self, vocab: int = 50, dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Linear(4 * dim, dim)
        )
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, idx: Tensor) -> Tensor:
        h = self.embed(idx)
        out: Tensor = self.head(h + self.mlp(h))
        return out


def test_tied_weights_stay_float_and_shared() -> None:
    torch.manual_seed(0)
    model: Any = TiedLM()
    quantized: Any = quantize_linear_layers(model)
    assert type(quantized.head) is nn.Linear
    assert quantized.head.weight is quantized.embed.weight
    assert isinstance(quantized.mlp[0], QuantizedLinear)
    assert isinstance(quantized.mlp[2], QuantizedLinear)
    # 参照: MLP の 2 層だけ逆量子化した重みに替えた float のモデル
    reference = copy.deepcopy(model)
    reference.mlp = with_dequantized_weights(model.mlp)
    idx = torch.randint(0, 50, (2, 6))
    with torch.no_grad():
        torch.testing.assert_close(
            quantized(idx), reference(idx), rtol=0, atol=0
        )


def test_skip_by_module_name() -> None:
    mlp = make_mlp()
    quantized: Any = quantize_linear_layers(mlp, skip=["2"])
    assert isinstance(quantized[0], QuantizedLinear)
    assert type(quantized[2]) is nn.Linear
    nested = nn.Sequential(make_mlp(), make_mlp())
    quantized = quantize_linear_layers(nested, skip=["1"])
    assert isinstance(quantized.get_submodule("0.2"), QuantizedLinear)
    assert type(quantized.get_submodule("1.0")) is nn.Linear


# ---- 大きさを測る ------------------------------------------------------


def test_int8_weights_are_about_a_quarter() -> None:
    """Linear の重みのバイト数は int8 化でおよそ 1/4 になる。

    自前は行ごとの scale（float32 を行数ぶん）が加わるので
    ちょうど 1/4 + 1 / in_features。torch.ao は scale が 1 つ。
    """
    mlp: Any = make_mlp()
    own: Any = quantize_linear_layers(mlp)
    ao = ao_quantize(mlp)
    for i in (0, 2):
        linear = mlp[i]
        float_bytes = linear.weight.numel() * linear.weight.element_size()
        assert float_bytes == 4 * linear.weight.numel()
        own_bytes = own[i].weight_int8.nbytes + own[i].weight_scale.nbytes
        ratio = own_bytes / float_bytes
        assert ratio == pytest.approx(1 / 4 + 1 / linear.in_features)
        qweight = ao[i].weight()
        ao_bytes = qweight.numel() * qweight.element_size()
        assert ao_bytes / float_bytes == 1 / 4


def test_model_size_bytes() -> None:
    mlp = make_mlp()
    size = model_size_bytes(mlp)
    expected = sum(p.numel() * 4 for p in mlp.parameters())
    assert size.parameter_bytes == size.state_dict_bytes == expected
    assert size.saved_bytes > expected  # 名前などの付帯情報が加わる

    own = model_size_bytes(quantize_linear_layers(mlp))
    ao = model_size_bytes(ao_quantize(mlp))
    # torch.ao の重みは parameters() にも buffers() にも現れない
    assert ao.parameter_bytes == 0
    assert ao.state_dict_bytes > 0
    for s in (own, ao):
        assert s.state_dict_bytes < 0.3 * size.state_dict_bytes
        assert s.saved_bytes < 0.35 * size.saved_bytes


def test_model_size_counts_shared_weights_once() -> None:
    model = TiedLM()
    size = model_size_bytes(model)
    # parameters() は共有された Parameter を 1 回だけ返す
    expected = sum(p.numel() * 4 for p in model.parameters())
    assert size.parameter_bytes == size.state_dict_bytes == expected


def test_output_error() -> None:
    ref = torch.tensor([[3.0, 4.0]])
    err = output_error(ref, torch.tensor([[3.0, 4.5]]))
    torch.testing.assert_close(
        torch.tensor([err.max_abs, err.relative]),
        torch.tensor([0.5, 0.5 / 5.0]),
    )
    with pytest.raises(ValueError):
        output_error(ref, ref.T)


def test_quantized_gpt_generates_the_same_with_and_without_cache() -> None:
    """int8 にした GPT でも、KV キャッシュの有無で貪欲法の出力が同じ。

    第20章は量子化したモデルで generate を呼ぶ。置き換えた線形層が
    キャッシュの経路（1 トークンずつの入力）でも同じ計算をすることを
    確かめる。
    """
    from easy_transformer.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(
        GPTConfig(
            vocab_size=30, block_size=32, n_layers=2, n_heads=2, d_model=16
        )
    ).eval()
    quantized = quantize_linear_layers(model)
    assert isinstance(quantized, GPT)
    prompt = torch.tensor([[1, 2, 3, 4]])
    with_cache = quantized.generate(prompt, 12, use_cache=True)
    without = quantized.generate(prompt, 12, use_cache=False)
    assert torch.equal(with_cache, without)
    n_int8 = sum(
        isinstance(m, QuantizedLinear) for m in quantized.modules()
    )
    assert n_int8 > 0
    # 出力層は埋め込みと重みを共有するので float のまま
    assert not isinstance(quantized.lm_head, QuantizedLinear)
