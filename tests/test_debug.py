"""easy_transformer.debug のテスト。

期待値は手で書かず、実際に計算したテンソルの形状、
``torch.linalg.vector_norm`` / ``torch.nn.utils.get_total_norm`` の値、
わざと壊した層の名前と突き合わせる。
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from easy_transformer.debug import (
    ROOT_NAME,
    GradNormMonitor,
    NonFiniteError,
    ShapeTracer,
    detect_anomalies,
    shape_of,
)


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def _encoder_layer() -> nn.TransformerEncoderLayer:
    torch.manual_seed(0)
    return nn.TransformerEncoderLayer(
        d_model=16,
        nhead=2,
        dim_feedforward=32,
        dropout=0.0,
        batch_first=True,
    )


def _no_hooks_left(model: nn.Module) -> bool:
    return all(
        not m._forward_hooks and not m._forward_pre_hooks
        for m in model.modules()
    )


# ------------------------------------------------------------ ShapeTracer


def test_shape_tracer_records_actual_shapes_of_sequential() -> None:
    model = _mlp()
    x = torch.randn(3, 8)
    with ShapeTracer(model) as tracer:
        y = model(x)

    # 同じ入力を層ごとに手で流して、実際の形状を得る。
    h0 = model[0](x)
    h1 = model[1](h0)
    h2 = model[2](h1)
    assert torch.equal(y, h2)  # 追跡しても出力は変わらない
    actual = [
        (ROOT_NAME, x, h2),
        ("0", x, h0),
        ("1", h0, h1),
        ("2", h1, h2),
    ]
    assert len(tracer.records) == len(actual)
    for rec, (name, inp, out) in zip(tracer.records, actual, strict=True):
        assert rec.name == name
        assert (
            rec.type_name
            == type(
                dict(model.named_modules())[
                    "" if name == ROOT_NAME else name
                ]
            ).__name__
        )
        assert rec.inputs == [tuple(inp.shape)]
        assert rec.outputs == tuple(out.shape)
    assert [r.depth for r in tracer.records] == [0, 1, 1, 1]


def test_shape_tracer_on_transformer_encoder_layer() -> None:
    layer = _encoder_layer()
    x = torch.randn(2, 5, 16)
    with ShapeTracer(layer) as tracer:
        y = layer(x)

    # post-LN の TransformerEncoderLayer の計算を、同じ部品で手で再現する。
    # 出力が一致すれば、下の途中の値は層の中で実際に流れた値と同じ。
    attn = layer.self_attn(x, x, x, need_weights=False)
    x1 = layer.norm1(x + attn[0])
    f1 = layer.linear1(x1)
    f2 = layer.linear2(layer.activation(f1))
    out = layer.norm2(x1 + f2)
    torch.testing.assert_close(out, y)

    by_name = {r.name: r for r in tracer.records}
    assert by_name[ROOT_NAME].inputs == [tuple(x.shape)]
    assert by_name[ROOT_NAME].outputs == tuple(y.shape)
    assert by_name["self_attn"].inputs == [tuple(x.shape)] * 3
    assert by_name["self_attn"].outputs == shape_of(attn)
    assert by_name["norm1"].outputs == tuple(x1.shape)
    assert by_name["linear1"].inputs == [tuple(x1.shape)]
    assert by_name["linear1"].outputs == tuple(f1.shape)
    assert by_name["linear2"].outputs == tuple(f2.shape)
    assert by_name["norm2"].outputs == tuple(out.shape)
    # 記録は呼び出しが始まった順: 親が先、子はその後に実行順で並ぶ。
    names = [r.name for r in tracer.records]
    assert names[0] == ROOT_NAME
    assert names.index("self_attn") < names.index("linear1")
    assert names.index("linear1") < names.index("linear2")


def test_shape_tracer_records_tensor_kwargs() -> None:
    attn = nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(2, 4, 8)
    mask = torch.zeros(4, 4, dtype=torch.bool)
    with ShapeTracer(attn) as tracer:
        attn(x, x, x, attn_mask=mask, need_weights=True)
    (rec,) = tracer.records
    assert rec.kwargs == {"attn_mask": tuple(mask.shape)}  # bool は入れない
    assert "attn_mask=(4, 4)" in rec.format_inputs()


def test_shape_tracer_removes_hooks_on_exit() -> None:
    model = _encoder_layer()
    x = torch.randn(2, 5, 16)
    with ShapeTracer(model) as tracer:
        assert not _no_hooks_left(model)
        model(x)
    assert _no_hooks_left(model)
    n = len(tracer.records)
    model(x)  # 抜けた後の呼び出しは記録されない
    assert len(tracer.records) == n
    with tracer:  # 入り直すと記録は新しくなる
        model(x)
    assert len(tracer.records) == n
    assert _no_hooks_left(model)


def test_shape_tracer_removes_hooks_on_exception() -> None:
    model = _mlp()
    with pytest.raises(RuntimeError), ShapeTracer(model):
        model(torch.randn(3, 7))  # 形が合わず Linear で失敗する
    assert _no_hooks_left(model)


def test_shape_tracer_shared_module_is_recorded_each_call() -> None:
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    with ShapeTracer(model) as tracer:
        model(torch.randn(2, 4))
    # named_modules は同じモジュールを 1 度しか返さないが、呼び出しは 2 回。
    assert [r.name for r in tracer.records] == [ROOT_NAME, "0", "1", "0"]


def test_shape_tracer_table() -> None:
    model = _mlp()
    with ShapeTracer(model) as tracer:
        model(torch.randn(3, 8))
    lines = tracer.table().splitlines()
    assert len(lines) == 2 + len(tracer.records)  # 見出しと区切り線
    for line, rec in zip(lines[2:], tracer.records, strict=True):
        assert line.split() == [
            rec.name,
            rec.type_name,
            *rec.format_inputs().split(),
            *str(rec.outputs).split(),
        ]
    assert len(tracer.table(max_depth=0).splitlines()) == 3


# -------------------------------------------------------- GradNormMonitor


def _train_steps(
    model: nn.Module, monitor: GradNormMonitor, steps: int
) -> list[dict[str, Tensor]]:
    """数ステップ学習し、各ステップの勾配の写しを返す。"""
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(0)
    grads = []
    for _ in range(steps):
        x = torch.randn(4, 5, 16, generator=g)
        loss = model(x).pow(2).mean()
        loss.backward()
        monitor.record()
        grads.append(
            {
                n: p.grad.clone()
                for n, p in model.named_parameters()
                if p.grad is not None
            }
        )
        opt.step()
        opt.zero_grad()
    return grads


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_grad_norms_match_vector_norm(norm_type: float) -> None:
    model = _encoder_layer()
    monitor = GradNormMonitor(model, norm_type=norm_type)
    grads = _train_steps(model, monitor, steps=3)

    assert len(monitor.history) == 3
    for step, step_grads in zip(monitor.history, grads, strict=True):
        assert set(step) == set(step_grads)
        for name, grad in step_grads.items():
            expected = torch.linalg.vector_norm(grad, norm_type).item()
            assert step[name] == pytest.approx(expected, rel=1e-6)
    # 推移の取り出しも同じ値を返す。
    name = "linear1.weight"
    assert monitor.series(name) == [s[name] for s in monitor.history]
    # 学習が進んで勾配が変わっている（同じ値を使い回していない）。
    assert len(set(monitor.series(name))) == 3


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_total_norm_matches_torch(norm_type: float) -> None:
    model = _encoder_layer()
    monitor = GradNormMonitor(model, norm_type=norm_type)
    grads = _train_steps(model, monitor, steps=2)
    for total, step_grads in zip(monitor.total_norms(), grads, strict=True):
        expected = torch.nn.utils.get_total_norm(
            list(step_grads.values()), norm_type
        )
        assert total == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("depth", [None, 1])
def test_layer_norms_match_norm_of_concatenated_grads(
    depth: int | None,
) -> None:
    model = nn.Sequential(_encoder_layer(), nn.Linear(16, 16))
    monitor = GradNormMonitor(model)
    grads = _train_steps(model, monitor, steps=2)
    curves = monitor.layer_norms(depth=depth)

    for t, step_grads in enumerate(grads):
        # 独立な計算: 層に属する勾配を 1 本につないでノルムを取る。
        members: dict[str, list[Tensor]] = {}
        for name, grad in step_grads.items():
            module = name.rsplit(".", 1)[0]
            if depth is not None:
                module = ".".join(module.split(".")[:depth])
            members.setdefault(module, []).append(grad.flatten())
        assert set(curves) == set(members)
        for module, parts in members.items():
            expected = torch.linalg.vector_norm(torch.cat(parts)).item()
            assert curves[module][t] == pytest.approx(expected, rel=1e-5)
    if depth == 1:
        assert list(curves) == ["0", "1"]
    else:
        assert "0.self_attn" in curves
        assert "0.self_attn.out_proj" in curves


def test_params_without_grad_are_skipped() -> None:
    # 使われない層と凍結した層は記録に入らず、推移では NaN になる。
    model = nn.ModuleDict(
        {"used": nn.Linear(3, 3), "unused": nn.Linear(3, 3)}
    )
    model["used"].bias.requires_grad_(False)
    monitor = GradNormMonitor(model)
    model["used"](torch.randn(2, 3)).sum().backward()
    step = monitor.record()
    assert set(step) == {"used.weight"}
    assert math.isnan(monitor.series("unused.weight")[0])
    assert set(monitor.layer_norms()) == {"used"}

    monitor.clear()
    assert monitor.history == []
    model.zero_grad(set_to_none=True)
    assert monitor.record() == {}
    assert math.isnan(monitor.total_norms()[0])


def test_root_parameters_are_grouped_under_root_name() -> None:
    model = nn.Linear(3, 2)
    monitor = GradNormMonitor(model)
    model(torch.randn(4, 3)).sum().backward()
    monitor.record()
    curves = monitor.layer_norms()
    assert list(curves) == [ROOT_NAME]
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(grads) == 2
    expected = torch.linalg.vector_norm(
        torch.cat([g.flatten() for g in grads])
    )
    assert curves[ROOT_NAME][0] == pytest.approx(expected.item(), rel=1e-6)


def test_grad_norm_monitor_rejects_bad_norm_type() -> None:
    with pytest.raises(ValueError, match="norm_type"):
        GradNormMonitor(_mlp(), norm_type=0.0)


# ------------------------------------------------------ detect_anomalies


class _Log(nn.Module):
    """負の入力で NaN、0 で -Inf を出す層。"""

    def forward(self, x: Tensor) -> Tensor:
        return torch.log(x)


class _Shift(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: Tensor) -> Tensor:
        return x * 0 + self.value


def test_reports_the_layer_that_produced_nan() -> None:
    model = nn.Sequential(
        nn.Linear(4, 4), _Shift(-1.0), _Log(), nn.Linear(4, 2)
    )
    with detect_anomalies(model) as detector:
        out = model(torch.randn(3, 4))
    assert torch.isnan(out).all()  # 親も最後の層も NaN を出している
    assert detector.first is not None
    assert detector.first.name == "2"
    assert detector.first.type_name == "_Log"
    assert detector.first.kind == "NaN"
    assert detector.first.inputs_finite
    assert "'2'" in str(detector.first)
    assert _no_hooks_left(model)


def test_reports_inf() -> None:
    model = nn.Sequential(nn.Linear(4, 4), _Shift(0.0), _Log(), nn.ReLU())
    with detect_anomalies(model) as detector:
        model(torch.randn(3, 4))
    assert detector.first is not None
    assert (detector.first.name, detector.first.kind) == ("2", "Inf")


def test_reports_nan_in_nested_transformer_layer() -> None:
    layer = _encoder_layer()
    model = nn.Sequential(layer, nn.Linear(16, 3))
    with torch.no_grad():
        layer.linear1.weight[0, 0] = math.nan
    with detect_anomalies(model) as detector:
        model(torch.randn(2, 5, 16))
    assert detector.first is not None
    assert detector.first.name == "0.linear1"
    assert detector.first.inputs_finite


def test_nan_input_is_reported_as_not_from_the_module() -> None:
    model = _mlp()
    x = torch.randn(3, 8)
    x[1, 2] = math.nan
    with detect_anomalies(model) as detector:
        model(x)
    assert detector.first is not None
    assert detector.first.name == "0"
    assert not detector.first.inputs_finite


def test_no_anomaly_gives_none_and_detector_resets() -> None:
    model = nn.Sequential(_Shift(-1.0), _Log())
    detector = detect_anomalies(model)
    with detector:
        model(torch.randn(2, 4))
    assert detector.first is not None
    with detector:
        model[0](torch.randn(2, 4))  # Log を通らないので有限
    assert detector.first is None


def test_raise_error_stops_at_the_first_anomaly() -> None:
    model = nn.Sequential(_Shift(-1.0), _Log(), nn.Linear(3, 3))
    tracer_model_calls: list[str] = []
    model[2].register_forward_hook(
        lambda m, a, o: tracer_model_calls.append("2")
    )
    with (
        pytest.raises(NonFiniteError) as info,
        detect_anomalies(model, raise_error=True),
    ):
        model(torch.randn(2, 3))
    assert info.value.report.name == "1"
    assert "'1'" in str(info.value)
    assert tracer_model_calls == []  # NaN の後の層は走っていない
    assert len(model[2]._forward_hooks) == 1  # 自分の掛けたものだけ残る
