"""重みの int8 量子化と、その効果を測る道具。

上から順に、次の 4 つを置く。

1. 出力チャネルごとの対称量子化 `quantize_per_channel` と `dequantize`
2. int8 の重みを持つ線形層 `QuantizedLinear` と、
   モデル内の `nn.Linear` を置き換える `quantize_linear_layers`
3. 比較のための PyTorch 標準の動的量子化 `torch_ao_quantize_dynamic`
4. 測る道具 `model_size_bytes` と `output_error`

自前の量子化は、量子化済みテンソル型（`torch.qint8`）を使わず、
ふつうの `torch.int8` のテンソルと `scale` の組で表す。
PyTorch 2.13 で量子化済みテンソル型そのものが非推奨になり
（pytorch/pytorch#184982）、この「素の整数型 + 自分で持つ scale」が
今後の標準の書き方とされているからである。
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Collection
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# 対称量子化では -128 を使わず [-127, 127] にそろえる。
# こうすると 0 を中心に正負が同じ幅になり、scale が 1 つで済む。
QMAX = 127

# 行がすべて 0 のとき scale が 0 になって割り算が壊れるのを防ぐ下限。
# torch.ao の observer と同じ値にして、参照実装と比べられるようにする。
_EPS = torch.finfo(torch.float32).eps


# ---- 1. 出力チャネルごとの対称量子化 ---------------------------------


def quantize_per_channel(w: Tensor) -> tuple[Tensor, Tensor]:
    """重み `w`（形状 (out, ...)）を出力チャネル（行）ごとに int8 にする。

    行 i の scale は `max|w[i]| / 127` で、`q = round(w / scale)` とする。
    どの要素も |w / scale| <= 127 なので切り詰め（clamp）は起きず、
    逆量子化の誤差は丸めの分だけ、つまり各行で scale / 2 以下になる。

    Returns:
        `(q, scale)`。`q` は `w` と同じ形状の `torch.int8`、
        `scale` は形状 (out,) の `torch.float32`。
    """
    if w.dim() < 1:
        raise ValueError("w は 1 次元以上のテンソルにしてください")
    # 計算は float32 で行う。bfloat16 などのまま割ると丸めが粗く、
    # 誤差の上限 scale / 2 が保てない。
    w32 = w.detach().to(torch.float32)
    amax = w32.abs().reshape(w32.shape[0], -1).amax(dim=1)
    scale = torch.clamp(amax / QMAX, min=_EPS)
    q = torch.round(w32 / _per_row(scale, w32.dim()))
    return q.clamp(-QMAX, QMAX).to(torch.int8), scale


def dequantize(q: Tensor, scale: Tensor) -> Tensor:
    """`quantize_per_channel` の逆。`q * scale` を行ごとに計算する。"""
    return q.to(scale.dtype) * _per_row(scale, q.dim())


def _per_row(scale: Tensor, ndim: int) -> Tensor:
    """形状 (out,) の scale を (out, 1, ..., 1) にし、行ごとに掛ける。"""
    return scale.reshape(-1, *([1] * (ndim - 1)))


# ---- 2. int8 の重みを持つ線形層 ---------------------------------------


class QuantizedLinear(nn.Module):
    """int8 の重みと行ごとの scale を持つ、推論専用の線形層。

    重みは buffer として持つので、`state_dict` に入り `.to()` で動くが、
    学習はしない（`parameters()` には何も出てこない）。
    forward では重みを float に戻してから `F.linear` を呼ぶ。
    つまり節約できるのはメモリと保存サイズで、計算は速くならない
    （int8 のまま掛け算する専用の計算核を使う `torch.ao` との違い）。

    `weight` は逆量子化した重みを返す読み取り専用の属性である。
    `nn.TransformerEncoderLayer` の高速経路のように、親モジュールが
    `linear.weight` を直接読むコードでもそのまま動くようにするためである。
    """

    weight_int8: Tensor
    weight_scale: Tensor
    bias: Tensor | None

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.register_buffer(
            "weight_int8",
            torch.zeros(out_features, in_features, dtype=torch.int8),
        )
        self.register_buffer("weight_scale", torch.ones(out_features))
        self.register_buffer(
            "bias", torch.zeros(out_features) if bias else None
        )

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> QuantizedLinear:
        """学習済みの `nn.Linear` から作る。元の層は変更しない。"""
        layer = cls(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
        )
        q, scale = quantize_per_channel(linear.weight)
        layer.weight_int8.copy_(q)
        layer.weight_scale.copy_(scale)
        if linear.bias is not None and layer.bias is not None:
            # バイアスは要素数が少なく誤差に敏感なので float のまま持つ
            layer.bias.copy_(linear.bias.detach())
        return layer.to(linear.weight.device)

    @property
    def weight(self) -> Tensor:
        """逆量子化した重み（形状 (out_features, in_features)）。"""
        return dequantize(self.weight_int8, self.weight_scale)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight.to(x.dtype)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, weight, bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, "
            f"out_features={self.out_features}, "
            f"bias={self.bias is not None}, dtype=int8"
        )


def quantize_linear_layers(
    model: nn.Module, *, skip: Collection[str] = ()
) -> nn.Module:
    """モデル内の `nn.Linear` を `QuantizedLinear` に替えたコピーを返す。

    元のモデルは変更しない。返すコピーは推論用なので `eval()` にしてある。
    `model` そのものが `nn.Linear` なら `QuantizedLinear` を返す
    （`torch.ao` の `quantize_dynamic` は子の層しか置き換えないので、
    こちらは何も変えずに返す）。

    置き換えるのは型がちょうど `nn.Linear` の層だけで、サブクラスは除く。
    たとえば `nn.MultiheadAttention` の `out_proj` はサブクラス
    `NonDynamicallyQuantizableLinear` で、親が forward を呼ばずに重みを
    直接読むため、置き換えても量子化の効果がない。`torch.ao` の
    動的量子化も同じ規則で層を選ぶので、両者の結果を比べられる。

    重み共有のある層は量子化しない（float のまま、共有も保つ）。
    GPT のように埋め込み層と出力層が 1 つの行列を共有するモデルで
    出力層だけを int8 にすると、埋め込み側の float の行列は残ったまま
    int8 の複製が増え、サイズはかえって 1/4 だけ大きくなるからである。
    共有は `named_parameters(remove_duplicate=False)` で同じ
    `Parameter` が 2 回以上現れることで見つける。

    Args:
        model: 量子化するモデル。
        skip: 量子化しないモジュールの名前（`named_modules()` の名前）。
            名前が一致する層と、その名前の下にある層を飛ばす。
    """
    if type(model) is nn.Linear and "" not in skip:
        # 親がないので差し替えられない。層そのものを量子化して返す
        return QuantizedLinear.from_linear(model).eval()
    quantized = copy.deepcopy(model).eval()
    counts: dict[int, int] = {}
    for _, param in quantized.named_parameters(remove_duplicate=False):
        counts[id(param)] = counts.get(id(param), 0) + 1

    def skipped(name: str) -> bool:
        return any(name == s or name.startswith(s + ".") for s in skip)

    # 走査しながら置き換えると named_modules の反復が壊れるので、先に集める
    targets = [
        (name, module)
        for name, module in quantized.named_modules()
        if type(module) is nn.Linear
        and name  # 根（モデルそのもの）は上で扱った
        and not skipped(name)
        and counts[id(module.weight)] == 1
    ]
    for name, module in targets:
        parent_name, _, child_name = name.rpartition(".")
        parent = quantized.get_submodule(parent_name)
        setattr(parent, child_name, QuantizedLinear.from_linear(module))
    return quantized


# ---- 3. 比較: PyTorch の動的量子化 -------------------------------------


def torch_ao_quantize_dynamic(model: nn.Module) -> nn.Module:
    """`torch.ao` の `quantize_dynamic` で `nn.Linear` を int8 にする。

    自前の `quantize_linear_layers` と比べるための薄い包みである。
    元のモデルは変更せず、`eval()` にしたコピーを返す。
    自前の実装との違いは 3 つある。

    - 重みの scale はテンソル全体で 1 つ（per-tensor の対称量子化）。
    - 入力（活性）も呼び出しのたびに範囲を測って整数にし、整数どうしの
      専用の計算核で掛け算する。そのため速くなりうるが、入力の量子化の
      分だけ誤差も増える。入力は `reduce_range=True` で量子化されるので、
      実際の刻みは 0〜127 の 7 bit である。
    - 量子化した重みは `parameters()` にも `buffers()` にも現れない
      （`state_dict` には入る）。サイズは `model_size_bytes` の
      `state_dict_bytes` か `saved_bytes` で比べる。

    PyTorch 2.13 での現状（この版で確かめた）:

    - `quantize_dynamic` は非推奨で、呼ぶと `DeprecationWarning`
      「torch.ao.quantization is deprecated and will be removed in 2.10」
      が出る（2.13 でもまだ動く）。移行先は別パッケージ torchao の
      `quantize_` である（pytorch/ao#2259）。この環境に torchao はない。
    - 量子化済みテンソル型（`torch.qint8` など）を作る関数も非推奨になり、
      `UserWarning` が出る（pytorch/pytorch#184982）。
    - `batch_first=True` の `nn.TransformerEncoderLayer` を量子化すると、
      推論時の高速経路が `linear1.weight` をテンソルとして読もうとして
      `AttributeError` になる（量子化後の `weight` はメソッドのため。
      pytorch/pytorch#109987 と同じ原因）。`batch_first=False` なら動く。

    警告は握りつぶさない。いったん受け取り、同じ種類と文面のまま、
    この関数を呼んだ側の行から出し直す。PyTorch の警告はこのモジュールの
    行から出たことになり、Python の既定の設定では `DeprecationWarning` が
    `__main__` 以外からだと表示されない。呼んだ側から出し直せば、
    スクリプトやノートブックでも利用者の目に届く。

    テストで受けるには `pytest.warns(DeprecationWarning)` を使う。
    """
    # torch.ao はいずれ取り除かれるので、使うときにだけ import する。
    # 取り除かれても、このモジュールのほかの部分はそのまま使える。
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # torch.ao には型注釈がないので、mypy の検査を 1 行だけ外す
        quantized: nn.Module = quantize_dynamic(  # type: ignore
            model, {nn.Linear}, dtype=torch.qint8
        )
    # 同じ警告が内部の 2 か所（quantize_dynamic と convert）から出るので、
    # 種類と文面が同じものは 1 回にまとめる
    seen: set[tuple[type[Warning], str]] = set()
    for w in caught:
        key = (w.category, str(w.message))
        if key not in seen:
            seen.add(key)
            warnings.warn(w.message, stacklevel=2)
    return quantized


# ---- 4. 測る道具 -------------------------------------------------------


@dataclass(frozen=True)
class ModelSize:
    """モデルの大きさ（バイト数）。

    Attributes:
        parameter_bytes: `parameters()` と `buffers()` のテンソルの合計。
        state_dict_bytes: `state_dict()` に入るテンソルの合計。
            `torch.ao` の量子化済みの重みはここにだけ現れる。
        saved_bytes: `state_dict` を `torch.save` したファイルの大きさ。
            テンソルの中身に、名前や形状などの付帯情報が加わる。
    """

    parameter_bytes: int
    state_dict_bytes: int
    saved_bytes: int


def model_size_bytes(model: nn.Module) -> ModelSize:
    """モデルのパラメータ・buffer・保存ファイルのバイト数を測る。

    共有されたテンソル（重み共有）は 1 回だけ数える。`torch.save` も
    共有された記憶領域を 1 回しか書かないので、数え方がそろう。
    """
    tensors = [*model.parameters(), *model.buffers()]
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return ModelSize(
        parameter_bytes=_unique_nbytes(tensors),
        state_dict_bytes=_unique_nbytes(
            _flatten_tensors(model.state_dict().values())
        ),
        saved_bytes=buffer.getbuffer().nbytes,
    )


def _flatten_tensors(values: object) -> list[Tensor]:
    """入れ子のタプルやリストの中にあるテンソルを平らに集める。

    `torch.ao` の量子化済みの層は、`state_dict` に
    （重み, バイアス）のタプルを 1 つの値として入れるため。
    """
    if isinstance(values, Tensor):
        return [values]
    if isinstance(values, (list, tuple, type({}.values()))):
        return [t for v in values for t in _flatten_tensors(v)]
    return []


def _unique_nbytes(tensors: list[Tensor]) -> int:
    """同じ記憶領域を指すテンソルを 1 回だけ数えて、バイト数を合計する。"""
    seen: set[tuple[int, int]] = set()
    total = 0
    for t in tensors:
        key = (t.untyped_storage().data_ptr(), int(t.storage_offset()))
        if key in seen:
            continue
        seen.add(key)
        total += t.numel() * t.element_size()
    return total


@dataclass(frozen=True)
class OutputError:
    """2 つの出力の差。

    Attributes:
        max_abs: 要素ごとの差の絶対値の最大。
        relative: 差のノルムを基準の出力のノルムで割った値
            （フロベニウスノルム、つまり全要素の 2 乗和の平方根）。
    """

    max_abs: float
    relative: float


def output_error(reference: Tensor, approx: Tensor) -> OutputError:
    """基準の出力 `reference` に対する `approx` の誤差を測る。"""
    if reference.shape != approx.shape:
        raise ValueError(
            f"形状が違います: {tuple(reference.shape)} と "
            f"{tuple(approx.shape)}"
        )
    ref = reference.detach().to(torch.float64)
    diff = approx.detach().to(torch.float64) - ref
    return OutputError(
        max_abs=diff.abs().max().item(),
        relative=(diff.norm() / ref.norm()).item(),
    )
