"""本の図とノートで使う描画関数。

どの関数も matplotlib の `Figure` を返し、保存はしない（保存は呼ぶ側、
本の図なら `figures_src/` のスクリプトが行う）。`Figure` は pyplot を
通さずに作るので、グローバルな状態（「現在の図」）を変えず、
何枚作っても閉じ忘れの警告が出ない。ノートブックではセルの最後の式に
置けば表示される。

上から順に、注意の重み（第 II 部）、位置エンコーディング、
埋め込みの 2 次元への射影、学習曲線の描画を置く。
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

_INSTALL_HINT = (
    "pip install 'easy-transformer[figures]' で matplotlib と "
    "matplotlib-fontja を入れてください。"
)

try:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage
except ModuleNotFoundError as e:  # pragma: no cover（extras が無い環境）
    raise ModuleNotFoundError(
        "easy_transformer.viz には matplotlib が要ります。" + _INSTALL_HINT,
        name=e.name,
    ) from e

# 描画の入力には Tensor も NumPy 配列も（入れ子のリストも）受け付ける
ArrayLike = Tensor | npt.ArrayLike

# 注意の重みは 0 以上。明るさが値とともに単調に増える配色にして、
# 白黒で印刷しても大小が読めるようにする。
ATTENTION_CMAP = "viridis"
# 位置エンコーディングは正負に振れるので、0 を白にする発散型の配色
SIGNED_CMAP = "RdBu_r"


def use_japanese_font() -> None:
    """matplotlib の既定のフォントを日本語の IPAex ゴシックにする。

    matplotlib-fontja を import するとフォントの設定（グローバルな
    rcParams）が書き換わるので、import しただけでは変えず、この関数を
    呼んだときだけ変える。図の見出しや軸のラベルに日本語を使うときに
    1 度呼ぶ（このモジュールの描画関数は、図を作るときに呼ぶ）。
    """
    try:
        import matplotlib_fontja  # noqa: F401
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            "日本語のフォントには matplotlib-fontja が要ります。"
            + _INSTALL_HINT,
            name=e.name,
        ) from e


def _figure(**kwargs: Any) -> Figure:
    """日本語のフォントを有効にして、pyplot を通さずに Figure を作る。

    ラベルや見出しに日本語を書くので、描く関数はこれで図を作る
    （use_japanese_font を呼ぶのは、import のときではなく描くとき）。
    """
    use_japanese_font()
    return Figure(**kwargs)


def _to_numpy(x: ArrayLike) -> np.ndarray:
    """Tensor・配列・リストを float64 の NumPy 配列にする。"""
    if isinstance(x, Tensor):
        # bfloat16 は NumPy に対応する型がないので、先に float64 にする
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _token_label(token: str) -> str:
    """軸ラベル用の文字列。改行や空白だけのトークンも見えるようにする。"""
    label = token.replace("\n", "\\n").replace("\t", "\\t")
    return repr(label) if label == "" or label.isspace() else label


# ---- 注意の重み --------------------------------------------------------


def _draw_attention(
    ax: Axes,
    weights: np.ndarray,
    tokens_q: Sequence[str],
    tokens_k: Sequence[str],
    vmax: float,
) -> AxesImage:
    """1 ヘッド分 (q, k) の重みを `ax` にヒートマップで描く。"""
    image = ax.imshow(weights, cmap=ATTENTION_CMAP, vmin=0.0, vmax=vmax)
    labels_k = [_token_label(t) for t in tokens_k]
    # 1〜2 文字のトークンだけなら横書きのまま、長いものがあれば縦にする
    long_label = max((len(t) for t in labels_k), default=0) > 2
    ax.set_xticks(
        range(len(labels_k)),
        labels=labels_k,
        rotation=90 if long_label else 0,
    )
    ax.set_yticks(
        range(len(tokens_q)), labels=[_token_label(t) for t in tokens_q]
    )
    ax.tick_params(length=0, labelsize=8)
    return image


def _check_tokens(
    weights: np.ndarray,
    tokens_q: Sequence[str],
    tokens_k: Sequence[str] | None,
) -> Sequence[str]:
    """トークン列の長さを重みの形状と照らし合わせ、キーの列を返す。"""
    keys = tokens_q if tokens_k is None else tokens_k
    q, k = weights.shape[-2:]
    if (len(tokens_q), len(keys)) != (q, k):
        raise ValueError(
            f"重みの形状 (..., {q}, {k}) とトークンの数 "
            f"({len(tokens_q)}, {len(keys)}) が合いません"
        )
    return keys


def plot_attention_heads(
    weights: ArrayLike,
    tokens_q: Sequence[str],
    tokens_k: Sequence[str] | None = None,
    *,
    title: str | None = None,
    ncols: int | None = None,
) -> Figure:
    """ヘッドごとの注意の重みを、ヒートマップの格子にして並べる。

    行がクエリ（注目する側）、列がキー（注目される側）で、
    各行の和は 1 になる（softmax の出力だから）。ヘッドどうしを比べられる
    ように、色の範囲は全ヘッドで共通にし、カラーバーを 1 本だけ付ける。

    Args:
        weights: 形状 (heads, q, k) の注意の重み。
        tokens_q: クエリ側のトークン（縦軸のラベル）。
        tokens_k: キー側のトークン（横軸のラベル）。省略すると
            `tokens_q` と同じ（自己注意）。
        title: 図全体の題。
        ncols: 格子の列数。省略すると 4 と `heads` の小さい方。
    """
    w = _to_numpy(weights)
    if w.ndim != 3 or w.shape[0] == 0:
        raise ValueError(
            f"weights は (heads, q, k) の 3 次元にしてください: {w.shape}"
        )
    keys = _check_tokens(w, tokens_q, tokens_k)
    heads = w.shape[0]
    ncols = min(heads, 4) if ncols is None else ncols
    nrows = math.ceil(heads / ncols)
    # トークンが多いほど 1 枚を大きくして、ラベルが重ならないようにする
    panel = max(2.2, 0.25 * max(w.shape[1:]))
    fig = _figure(
        figsize=(panel * ncols + 1.0, panel * nrows + 0.6),
        layout="constrained",
    )
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    vmax = float(w.max())
    image = None
    for h, ax in enumerate(axes):
        if h >= heads:
            ax.remove()  # 格子の余りのマスは消す
            continue
        image = _draw_attention(ax, w[h], tokens_q, keys, vmax)
        ax.set_title(f"ヘッド {h}", fontsize=9)
    assert image is not None
    fig.colorbar(image, ax=list(axes[:heads]), label="注意の重み")
    fig.supxlabel("キー（注目される側）", fontsize=9)
    fig.supylabel("クエリ（注目する側）", fontsize=9)
    if title is not None:
        fig.suptitle(title)
    return fig


def plot_attention(
    weights: ArrayLike,
    tokens_q: Sequence[str],
    tokens_k: Sequence[str] | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """1 ヘッド分の注意の重み（形状 (q, k)）をヒートマップで描く。

    引数は `plot_attention_heads` と同じで、`weights` が 2 次元である。
    """
    w = _to_numpy(weights)
    if w.ndim != 2:
        raise ValueError(
            f"weights は (q, k) の 2 次元にしてください: {w.shape}"
        )
    keys = _check_tokens(w, tokens_q, tokens_k)
    side = max(3.0, 0.3 * max(w.shape))
    fig = _figure(figsize=(side + 1.0, side), layout="constrained")
    ax = fig.subplots()
    image = _draw_attention(ax, w, tokens_q, keys, float(w.max()))
    ax.set_xlabel("キー（注目される側）")
    ax.set_ylabel("クエリ（注目する側）")
    fig.colorbar(image, ax=ax, label="注意の重み")
    if title is not None:
        ax.set_title(title)
    return fig


# ---- 位置エンコーディング ---------------------------------------------


def plot_positional_encoding(
    pe: ArrayLike,
    *,
    dims: Sequence[int] | None = None,
    title: str | None = None,
) -> Figure:
    """位置エンコーディングを、ヒートマップといくつかの次元の波形で描く。

    上段は行が位置、列が次元のヒートマップ。下段は選んだ次元の値を
    位置の関数として描く。正弦波の位置エンコーディングなら、
    次元が大きいほど波長が長くなる様子が両方から読み取れる。

    Args:
        pe: 形状 (positions, d_model) の位置エンコーディング。
        dims: 下段に描く次元。省略すると、0 から d_model / 2 までを
            4 等分した偶数の次元（正弦波の sin の側）を選ぶ。
        title: 図全体の題。
    """
    values = _to_numpy(pe)
    if values.ndim != 2:
        raise ValueError(
            f"pe は (positions, d_model) の 2 次元にしてください: "
            f"{values.shape}"
        )
    positions, d_model = values.shape
    if dims is None:
        dims = sorted({2 * (d_model * i // 16) for i in range(4)})
    fig = _figure(figsize=(6.4, 5.6), layout="constrained")
    ax_map, ax_wave = fig.subplots(
        2, 1, gridspec_kw={"height_ratios": [3, 2]}
    )
    limit = float(np.abs(values).max()) or 1.0
    image = ax_map.imshow(
        values,
        aspect="auto",
        cmap=SIGNED_CMAP,
        vmin=-limit,
        vmax=limit,
        interpolation="nearest",
    )
    ax_map.set_xlabel("次元")
    ax_map.set_ylabel("位置")
    fig.colorbar(image, ax=ax_map, label="値")
    for d in dims:
        ax_wave.plot(np.arange(positions), values[:, d], label=f"次元 {d}")
    ax_wave.set_xlabel("位置")
    ax_wave.set_ylabel("値")
    ax_wave.set_xlim(0, positions - 1)
    # 凡例は波に重ならないよう、グラフの右の外に置く
    ax_wave.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    if title is not None:
        fig.suptitle(title)
    return fig


# ---- 埋め込みの 2 次元への射影 -----------------------------------------


def _pca_2d(embeddings: ArrayLike) -> tuple[Tensor, Tensor]:
    """主成分分析で 2 次元に射影し、射影と各主成分の分散の割合を返す。"""
    x = torch.as_tensor(embeddings)
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    if x.dim() != 2 or min(x.shape) < 2:
        raise ValueError(
            "embeddings は 2 行 2 列以上の (n, d) にしてください: "
            f"{tuple(x.shape)}"
        )
    centered = x - x.mean(dim=0)
    # centered = U diag(S) Vh。Vh の行が主成分の向き（分散の大きい順）
    _, s, vh = torch.linalg.svd(centered, full_matrices=False)
    components = vh[:2]
    # 特異ベクトルは符号が決まらない（v も -v も解）。実装や環境で
    # 図が裏返らないよう、各主成分で絶対値が最大の成分を正にそろえる。
    largest = components.abs().argmax(dim=1)
    signs = torch.sign(components[torch.arange(2), largest])
    components = components * signs[:, None]
    variance = s**2
    return centered @ components.T, variance[:2] / variance.sum()


def project_2d(embeddings: ArrayLike) -> Tensor:
    """埋め込み（形状 (n, d)）を主成分分析で 2 次元に射影する。

    中心化した行列を特異値分解（`torch.linalg.svd`）し、特異値の大きい
    2 つの右特異ベクトルの向きに射影する。i 番目の列の分散（n - 1 で
    割る不偏分散）は i 番目の特異値の 2 乗 / (n - 1) になる。

    特異ベクトルの符号の不定性は、各主成分の向きで絶対値が最大の成分を
    正にすることで決める。同じ入力からは、いつも同じ向きの図ができる。

    Returns:
        形状 (n, 2) の射影。dtype は入力（整数なら既定の浮動小数点型）。
    """
    projected, _ = _pca_2d(embeddings)
    return projected


def plot_embeddings_2d(
    embeddings: ArrayLike,
    labels: Sequence[str],
    *,
    title: str | None = None,
) -> Figure:
    """埋め込みを `project_2d` で 2 次元にし、点にラベルを付けて描く。

    軸の名前には、その主成分が全体の分散の何割を説明するかを添える。
    割合が小さいときは、2 次元の図で見える距離が元の距離とずれている。
    縦横の縮尺は同じにする（射影で保たれる距離を、見た目でも保つため）。
    """
    projected, ratio = _pca_2d(embeddings)
    if len(labels) != projected.shape[0]:
        raise ValueError(
            f"ラベルの数 {len(labels)} と点の数 {projected.shape[0]} が"
            "合いません"
        )
    points = _to_numpy(projected)
    fig = _figure(figsize=(5.6, 5.0), layout="constrained")
    ax = fig.subplots()
    ax.scatter(points[:, 0], points[:, 1], s=18, color="#1f77b4")
    for (px, py), label in zip(points, labels, strict=True):
        ax.annotate(
            label,
            (px, py),
            xytext=(3, 3),
            textcoords="offset points",
            fontsize=9,
        )
    ax.set_xlabel(f"第 1 主成分（分散の {ratio[0].item():.0%}）")
    ax.set_ylabel(f"第 2 主成分（分散の {ratio[1].item():.0%}）")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    if title is not None:
        ax.set_title(title)
    return fig


# ---- 学習曲線 ----------------------------------------------------------

# 指標の名前（JSON Lines のキー）と、凡例に出す日本語の名前
METRIC_LABELS = {
    "train_loss": "学習データの損失",
    "val_loss": "検証データの損失",
    "lr": "学習率",
}


def plot_training_curves(
    records: Sequence[Mapping[str, object]],
    keys: Sequence[str] = ("train_loss", "val_loss"),
    *,
    title: str | None = None,
    logy: bool = False,
) -> Figure:
    """学習中に記録した指標から、横軸をステップにした学習曲線を描く。

    `records` は JSON Lines の 1 行を 1 つの辞書にしたリストで、
    どの辞書も `step` を持つ。指標は毎ステップ記録されるとは限らない
    （検証の損失はふつう数百ステップに 1 回）ので、各キーについて
    そのキーを持つ記録だけを結ぶ。点の少ない系列には印を付ける。

    Args:
        records: `{"step": 100, "train_loss": 2.3, ...}` の並び。
        keys: 描く指標の名前。記録に 1 つも現れないキーは描かない。
        title: 図の題。
        logy: 縦軸を対数目盛にする。
    """
    fig = _figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.subplots()
    drawn = []
    for key in keys:
        points = [
            (_number(r["step"]), _number(r[key]))
            for r in records
            if r.get(key) is not None
        ]
        if not points:
            continue
        steps, values = zip(*points, strict=True)
        ax.plot(
            steps,
            values,
            marker="o" if len(points) <= 30 else None,
            markersize=3,
            label=METRIC_LABELS.get(key, key),
        )
        drawn.append(key)
    if not drawn:
        raise ValueError(f"記録に {list(keys)} のどれも見つかりません")
    ax.set_xlabel("ステップ")
    ax.set_ylabel("損失" if all("loss" in k for k in drawn) else "値")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    if title is not None:
        ax.set_title(title)
    return fig


def _number(value: object) -> float:
    """JSON から読んだ値を数にする。数でなければ値を示して止める。"""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"数ではない値が記録にあります: {value!r}")
