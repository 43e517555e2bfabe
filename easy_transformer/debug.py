"""デバッグの道具: 形状の追跡、勾配ノルムの記録、NaN/Inf の発生源探し。

どれも任意の ``nn.Module`` に外から掛けるだけで、モデルのコードは
書き換えない。コンパイラで言えば、パスの間にダンプや検証を差し込む
``-print-after-all`` や ``-verify-each`` に当たる。

- ``ShapeTracer``: 各サブモジュールの入出力のテンソル形状を記録する。
- ``GradNormMonitor``: backward の後の勾配ノルムをパラメータごとに
  記録し、層ごとの推移を取り出す。
- ``detect_anomalies``: 最初に NaN/Inf を出したモジュールを突き止める。

``ShapeTracer`` と ``detect_anomalies`` は forward フック（hook）を使う。
フックはモジュールの呼び出しの前後に PyTorch が呼ぶ関数で、
``with`` を抜けると必ず外す（外し忘れると、以後の forward がすべて
遅くなり、記録も増え続ける）。
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

__all__ = [
    "ROOT_NAME",
    "AnomalyDetector",
    "AnomalyReport",
    "GradNormMonitor",
    "NonFiniteError",
    "ShapeRecord",
    "ShapeTracer",
    "detect_anomalies",
    "shape_of",
]

# named_modules() では最上位のモジュールの名前が "" なので、表示用の名前。
ROOT_NAME = "<root>"


def _display_name(name: str) -> str:
    return name or ROOT_NAME


def _iter_tensors(obj: Any) -> Iterator[Tensor]:
    """入れ子のタプル・リスト・辞書の中のテンソルを順に返す。"""
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _iter_tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _iter_tensors(item)


_H = TypeVar("_H", bound="_ModuleHooks")


class _ModuleHooks:
    """``with`` に入るとモデルの全モジュールにフックを掛け、抜けると外す。

    サブクラスは ``_attach`` で 1 つのモジュールにフックを掛け、
    返されたハンドルを ``self._handles`` に入れる。
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._handles: list[RemovableHandle] = []

    def _attach(self, name: str, module: nn.Module) -> None:
        raise NotImplementedError

    def __enter__(self: _H) -> _H:
        for name, module in self.model.named_modules():
            self._attach(name, module)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # 例外で抜けたときも外す。例外はそのまま伝える（None を返す）。
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


# ------------------------------------------------------------ 形状の追跡


def shape_of(obj: Any) -> Any:
    """テンソルを形状のタプルに置き換えた、同じ入れ子構造を返す。

    テンソル → ``(2, 5, 16)`` のようなタプル、タプルとリスト → リスト、
    辞書 → 辞書、None → None、それ以外 → 型の名前（例: ``'bool'``）。
    """
    if isinstance(obj, Tensor):
        return tuple(obj.shape)
    if isinstance(obj, (list, tuple)):
        return [shape_of(item) for item in obj]
    if isinstance(obj, dict):
        return {key: shape_of(value) for key, value in obj.items()}
    if obj is None:
        return None
    return type(obj).__name__


def _format_shape(shape: Any) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(_format_shape(s) for s in shape) + "]"
    if isinstance(shape, dict):
        items = (f"{k}: {_format_shape(v)}" for k, v in shape.items())
        return "{" + ", ".join(items) + "}"
    return str(shape)


@dataclass
class ShapeRecord:
    """1 回のモジュール呼び出しの記録。

    Attributes:
        name: ``named_modules()`` での名前（最上位は ``ROOT_NAME``）。
        type_name: モジュールのクラス名。
        depth: 入れ子の深さ（最上位が 0）。
        inputs: 位置引数それぞれの形状（``shape_of`` の形式）。
        kwargs: キーワード引数のうちテンソルのものの形状。
        outputs: 出力の形状。呼び出しが例外で終わったときは None。
    """

    name: str
    type_name: str
    depth: int
    inputs: list[Any]
    kwargs: dict[str, Any]
    outputs: Any = None

    def format_inputs(self) -> str:
        parts = [_format_shape(s) for s in self.inputs]
        parts += [f"{k}={_format_shape(s)}" for k, s in self.kwargs.items()]
        return ", ".join(parts)


class ShapeTracer(_ModuleHooks):
    """各サブモジュールの入出力のテンソル形状を、呼ばれた順に記録する。

    使い方::

        with ShapeTracer(model) as tracer:
            model(x)
        print(tracer.table())

    記録は呼び出しが始まった順（親が子より先）に並ぶ。同じモジュールが
    2 回呼ばれれば 2 行になる。forward の中でモジュールを通さずに呼んだ
    演算（``torch.matmul`` や ``F.softmax``）はフックが掛からないので
    記録されない。``nn.MultiheadAttention`` が ``out_proj`` の重みを直接
    使うように、サブモジュールの重みだけを使う実装も同じである。
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.records: list[ShapeRecord] = []
        # 呼び出し中の記録の添字。入れ子の呼び出しは後に始まったものが
        # 先に終わるので、スタックで前後のフックを対応させられる。
        self._open: list[int] = []

    def _attach(self, name: str, module: nn.Module) -> None:
        depth = name.count(".") + 1 if name else 0

        def before(
            mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> None:
            tensor_kwargs = {
                k: shape_of(v)
                for k, v in kwargs.items()
                if isinstance(v, Tensor)
            }
            self._open.append(len(self.records))
            self.records.append(
                ShapeRecord(
                    name=_display_name(name),
                    type_name=type(mod).__name__,
                    depth=depth,
                    inputs=[shape_of(a) for a in args],
                    kwargs=tensor_kwargs,
                )
            )

        def after(
            mod: nn.Module, args: tuple[Any, ...], output: Any
        ) -> None:
            self.records[self._open.pop()].outputs = shape_of(output)

        self._handles.append(
            module.register_forward_pre_hook(before, with_kwargs=True)
        )
        self._handles.append(module.register_forward_hook(after))

    def __enter__(self) -> ShapeTracer:
        # with に入るたびに記録を新しくする。
        self.records.clear()
        self._open.clear()
        return super().__enter__()

    def table(self, max_depth: int | None = None) -> str:
        """記録を表にした文字列を返す。名前は深さに応じて字下げする。

        Args:
            max_depth: これより深いモジュールの行を省く。None なら全部。
        """
        header = ("module", "type", "input", "output")
        rows = [
            (
                "  " * r.depth + r.name,
                r.type_name,
                r.format_inputs(),
                _format_shape(r.outputs),
            )
            for r in self.records
            if max_depth is None or r.depth <= max_depth
        ]
        widths = [
            max(len(row[i]) for row in [header, *rows]) for i in range(4)
        ]
        lines = [
            "  ".join(
                c.ljust(w) for c, w in zip(row, widths, strict=True)
            ).rstrip()
            for row in [header, *rows]
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


# ------------------------------------------------------------ 勾配ノルム


class GradNormMonitor:
    """backward の後の勾配ノルムを、パラメータごとに履歴として残す。

    使い方::

        monitor = GradNormMonitor(model)
        for batch in loader:
            loss = ...
            loss.backward()
            monitor.record()  # optimizer.zero_grad() と勾配クリップより前に
            optimizer.step()
            optimizer.zero_grad()
        curves = monitor.layer_norms(depth=2)  # 層ごとの推移

    フックは使わず、``record`` を呼んだ時点の ``p.grad`` を読む。
    勾配を溜める（gradient accumulation）ときも、溜め終わった値が見える。
    ``p.grad`` が None のパラメータ（その forward で使われなかった、
    または凍結した）はそのステップの記録に含めない。
    ``torch.nn.utils.clip_grad_norm_`` と同じ扱いである。

    Attributes:
        history: ステップごとの ``{パラメータ名: 勾配ノルム}``。
    """

    def __init__(self, model: nn.Module, norm_type: float = 2.0) -> None:
        if not norm_type > 0:
            raise ValueError(
                "norm_type は正の数（2.0 や math.inf）にしてください"
                f"（受け取った値: {norm_type}）。"
            )
        self.model = model
        self.norm_type = norm_type
        self.history: list[dict[str, float]] = []

    def record(self) -> dict[str, float]:
        """今の勾配のノルムを集めて履歴に足し、そのステップの記録を返す。"""
        named = [
            (name, p.grad)
            for name, p in self.model.named_parameters()
            if p.grad is not None
        ]
        if not named:
            step: dict[str, float] = {}
        else:
            norms = torch.stack(
                [
                    torch.linalg.vector_norm(
                        g.detach(), self.norm_type
                    ).float()
                    for _, g in named
                ]
            )
            # .item() を 1 つずつ呼ぶと GPU との同期がその回数起きるので、
            # まとめて 1 回で CPU に移す。
            values = norms.cpu().tolist()
            step = {
                name: v for (name, _), v in zip(named, values, strict=True)
            }
        self.history.append(step)
        return step

    def _combine(self, norms: list[float]) -> float:
        # 全体のノルムは、部分ごとのノルムを並べたベクトルのノルムに等しい
        # （どの p ノルムでも成り立つ）。
        if math.isinf(self.norm_type):
            return max(norms)
        p = self.norm_type
        return float(sum(n**p for n in norms) ** (1 / p))

    def series(self, name: str) -> list[float]:
        """1 つのパラメータの勾配ノルムの推移。勾配がないステップは NaN。"""
        return [step.get(name, math.nan) for step in self.history]

    def total_norms(self) -> list[float]:
        """全パラメータをつないだ勾配ノルムの推移。

        ``torch.nn.utils.clip_grad_norm_`` が返す値（クリップ前の全体の
        ノルム）と同じもの。勾配が 1 つもないステップは NaN。
        """
        return [
            self._combine(list(step.values())) if step else math.nan
            for step in self.history
        ]

    def layer_norms(
        self, depth: int | None = None
    ) -> dict[str, list[float]]:
        """モジュール（層）ごとにまとめた勾配ノルムの推移。

        パラメータ ``blocks.0.attn.q.weight`` はモジュール
        ``blocks.0.attn.q`` に属する。``depth`` を与えると名前の先頭の
        ``depth`` 個の部分でまとめる（``depth=2`` なら ``blocks.0``、
        つまり Transformer の 1 ブロック）。最上位のモジュールが直接
        持つパラメータは ``ROOT_NAME`` にまとめる。

        Returns:
            ``{モジュール名: ステップごとのノルム}``。名前はパラメータが
            最初に現れた順。勾配がないステップは NaN。
        """
        groups: dict[str, None] = {}
        for step in self.history:
            for name in step:
                groups.setdefault(self._group_of(name, depth))
        curves: dict[str, list[float]] = {g: [] for g in groups}
        for step in self.history:
            members: dict[str, list[float]] = {}
            for name, norm in step.items():
                members.setdefault(self._group_of(name, depth), []).append(
                    norm
                )
            for group, curve in curves.items():
                norms = members.get(group)
                curve.append(self._combine(norms) if norms else math.nan)
        return curves

    @staticmethod
    def _group_of(param_name: str, depth: int | None) -> str:
        parts = param_name.split(".")[:-1]  # 最後はパラメータ自身の名前
        if depth is not None:
            parts = parts[:depth]
        return ".".join(parts) or ROOT_NAME

    def clear(self) -> None:
        self.history.clear()


# ------------------------------------------------------- NaN/Inf の検出


@dataclass
class AnomalyReport:
    """最初に NaN/Inf を出力したモジュールの報告。

    Attributes:
        name: モジュールの名前（最上位は ``ROOT_NAME``）。
        type_name: モジュールのクラス名。
        kind: ``"NaN"`` または ``"Inf"``（両方あれば NaN）。
        inputs_finite: 入力がすべて有限だったか。True ならこの
            モジュールの計算が発生源。False なら、入力の時点ですでに
            壊れていた（モデルへの入力か、親モジュールの forward で
            モジュールを通さずに呼んだ演算が発生源）。
    """

    name: str
    type_name: str
    kind: str
    inputs_finite: bool

    def __str__(self) -> str:
        head = (
            f"モジュール '{self.name}'（{self.type_name}）の出力に"
            f" {self.kind} が現れました。"
        )
        if self.inputs_finite:
            return head + "入力は有限なので、このモジュールが発生源です。"
        return head + (
            "入力の時点ですでに NaN/Inf でした。モデルへの入力か、"
            "親モジュールの forward でモジュールを通さずに呼んだ演算"
            "（torch.log など）を調べてください。"
        )


class NonFiniteError(FloatingPointError):
    """``raise_error=True`` のとき、最初の NaN/Inf で送出する例外。"""

    def __init__(self, report: AnomalyReport) -> None:
        super().__init__(str(report))
        self.report = report


def _non_finite_kind(obj: Any) -> str | None:
    """NaN があれば "NaN"、Inf だけなら "Inf"、どちらもなければ None。"""
    kind = None
    for t in _iter_tensors(obj):
        # 整数や真偽値のテンソルは NaN/Inf を持てない。
        if not (t.is_floating_point() or t.is_complex()):
            continue
        if torch.isnan(t).any():
            return "NaN"
        if torch.isinf(t).any():
            kind = "Inf"
    return kind


class AnomalyDetector(_ModuleHooks):
    """forward の出力を見張り、最初に NaN/Inf を出したモジュールを記録する。

    forward フックはモジュールの計算が終わった直後に呼ばれる。子は親より
    先に終わるので、最初に引っかかるのは NaN/Inf を生んだいちばん内側の
    モジュールである（親の出力も後で NaN になるが、記録は最初の 1 つ）。

    ``torch.autograd.detect_anomaly`` との関係: あちらは backward で
    勾配に NaN が出たとき、その勾配を作った forward の演算の
    スタックトレースを示す。演算単位で細かいが、すべての演算の記録を
    取るので遅い。forward の値は見張らない。こちらは forward の値だけを
    モジュール単位で見張り、軽い。forward の値は有限なのに勾配だけが
    NaN/Inf になる場合（x = 0 での ``torch.sqrt`` の勾配など）は
    こちらでは見つからないので、``detect_anomaly`` を使う。
    手順としては、まずこちらで forward を調べ、forward が無事なら
    ``detect_anomaly`` で backward を調べる、と分担させるとよい。

    GPU では各モジュールの出力の検査ごとに CPU との同期が起きるので、
    デバッグのときだけ使う。
    """

    def __init__(
        self, model: nn.Module, *, raise_error: bool = False
    ) -> None:
        super().__init__(model)
        self.raise_error = raise_error
        self.first: AnomalyReport | None = None

    def __enter__(self) -> AnomalyDetector:
        self.first = None  # with に入るたびに見張り直す
        return super().__enter__()

    def _attach(self, name: str, module: nn.Module) -> None:
        def check(
            mod: nn.Module, args: tuple[Any, ...], output: Any
        ) -> None:
            if self.first is not None:
                return
            kind = _non_finite_kind(output)
            if kind is None:
                return
            self.first = AnomalyReport(
                name=_display_name(name),
                type_name=type(mod).__name__,
                kind=kind,
                inputs_finite=_non_finite_kind(args) is None,
            )
            if self.raise_error:
                raise NonFiniteError(self.first)

        self._handles.append(module.register_forward_hook(check))


def detect_anomalies(
    model: nn.Module, *, raise_error: bool = False
) -> AnomalyDetector:
    """最初に NaN/Inf を出したモジュールを突き止めるコンテキストマネージャ。

    使い方::

        with detect_anomalies(model) as detector:
            model(x)
        if detector.first is not None:
            print(detector.first)

    Args:
        model: 見張るモデル。すべてのサブモジュールにフックを掛ける。
        raise_error: True なら最初の NaN/Inf で ``NonFiniteError`` を
            送出し、forward をそこで止める。False なら最後まで走らせ、
            ``detector.first`` に記録だけ残す。
    """
    return AnomalyDetector(model, raise_error=raise_error)
