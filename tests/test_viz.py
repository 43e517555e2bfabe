"""easy_transformer.viz のテスト。

- `project_2d`: NumPy の `np.linalg.svd` で計算した主成分分析と一致すること
  （scikit-learn には頼らない）。
- 描画関数: Agg で例外も警告もなく描けること、図の中のデータ
  （画像の配列・線の座標・軸のラベル）が入力と一致すること。
"""

from __future__ import annotations

import io
import math
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from easy_transformer.viz import (
    plot_attention,
    plot_attention_heads,
    plot_embeddings_2d,
    plot_positional_encoding,
    plot_training_curves,
    project_2d,
)

# 欠けたグリフ（日本語が豆腐になる）や目盛りの誤用などの警告もエラーにする
pytestmark = pytest.mark.filterwarnings("error")


def render(fig: Figure) -> None:
    """Agg で実際に描く（描くときにしか出ない誤りや警告を拾う）。"""
    fig.savefig(io.BytesIO(), format="png")


def tick_texts(labels: list[matplotlib.text.Text]) -> list[str]:
    return [t.get_text() for t in labels]


def image_data(ax: Axes) -> np.ndarray:
    """ヒートマップとして描かれた配列。"""
    data = ax.images[0].get_array()
    assert data is not None
    return np.asarray(data)


# ---- project_2d --------------------------------------------------------


def numpy_pca(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """参照実装: NumPy の SVD による主成分分析（射影と特異値）。"""
    centered = x - x.mean(axis=0)
    _, s, vh = np.linalg.svd(centered, full_matrices=False)
    return centered @ vh[:2].T, s


def random_embeddings(n: int = 30, d: int = 12) -> torch.Tensor:
    torch.manual_seed(0)
    # 主成分の分散をはっきり違えて、主成分の向きが一意に決まるようにする
    return torch.randn(n, d, dtype=torch.float64) * torch.linspace(
        3, 0.5, d
    )


def test_project_2d_matches_numpy_svd_up_to_sign() -> None:
    x = random_embeddings()
    got = project_2d(x).numpy()
    ref, _ = numpy_pca(x.numpy())
    # 特異ベクトルの符号は実装ごとに違ってよいので、列ごとにそろえる
    signs = np.sign(np.sum(got * ref, axis=0))
    np.testing.assert_allclose(got, ref * signs, rtol=1e-10, atol=1e-10)


def test_project_2d_variance_is_singular_value_squared() -> None:
    x = random_embeddings()
    n = x.shape[0]
    got = project_2d(x).numpy()
    _, s = numpy_pca(x.numpy())
    np.testing.assert_allclose(
        got.var(axis=0, ddof=1), s[:2] ** 2 / (n - 1)
    )


def test_project_2d_sign_is_deterministic() -> None:
    """各主成分で絶対値最大の成分が正、という決め方が守られている。

    射影 P = X_c V から主成分の向き V を最小二乗で復元して確かめる。
    また、入力の列の並べ替えや平行移動に対して結果が変わらない
    （符号が SVD の内部の都合で反転しない）ことも確かめる。
    """
    x = random_embeddings()
    got = project_2d(x)
    centered = x - x.mean(dim=0)
    directions = torch.linalg.lstsq(centered, got).solution  # (d, 2)
    for k in range(2):
        v = directions[:, k]
        assert v[v.abs().argmax()] > 0
    torch.testing.assert_close(project_2d(x + 5.0), got)
    perm = torch.randperm(x.shape[1])
    torch.testing.assert_close(project_2d(x[:, perm]), got)


def test_project_2d_dtype_and_errors() -> None:
    x = random_embeddings().to(torch.float32)
    assert project_2d(x).dtype == torch.float32
    assert project_2d(x).shape == (30, 2)
    assert project_2d(np.arange(12).reshape(4, 3)).dtype == torch.float32
    with pytest.raises(ValueError):
        project_2d(torch.zeros(5, 1))


# ---- 注意の重み --------------------------------------------------------


def attention_weights(heads: int, q: int, k: int) -> torch.Tensor:
    torch.manual_seed(0)
    scores = torch.randn(heads, q, k)
    if q == k:  # 因果マスク（未来を見ない）をかけた自己注意の形
        mask = torch.ones(q, k, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
    return scores.softmax(dim=-1)


TOKENS = ["def", " f", "(", "x", "):", "\n", "    return", "変数"]


@pytest.mark.parametrize("heads", [1, 3, 4, 6])
def test_plot_attention_heads(heads: int) -> None:
    w = attention_weights(heads, len(TOKENS), len(TOKENS))
    fig = plot_attention_heads(w, TOKENS, title="注意の重み")
    render(fig)
    maps = [ax for ax in fig.axes if ax.images]
    assert len(maps) == heads
    # ヒートマップのほかにはカラーバーの軸が 1 つだけ（余りのマスは消す）
    assert len(fig.axes) == heads + 1
    for h, ax in enumerate(maps):
        np.testing.assert_allclose(image_data(ax), w[h].numpy())
        assert len(ax.get_xticklabels()) == len(TOKENS)
        assert len(ax.get_yticklabels()) == len(TOKENS)
    # 改行は見える形で、空白で始まるトークンはそのまま出る
    assert tick_texts(maps[0].get_yticklabels())[5] == "\\n"
    assert tick_texts(maps[0].get_xticklabels())[1] == " f"


def test_plot_attention_heads_cross_attention() -> None:
    tokens_q = ["私", "は", "猫"]
    tokens_k = ["I", "am", "a", "cat"]
    w = attention_weights(2, 3, 4)
    fig = plot_attention_heads(w, tokens_q, tokens_k, ncols=1)
    render(fig)
    ax = fig.axes[0]
    assert tick_texts(ax.get_yticklabels()) == tokens_q
    assert tick_texts(ax.get_xticklabels()) == tokens_k
    with pytest.raises(ValueError):
        plot_attention_heads(w, tokens_k, tokens_q)  # 形状と逆
    with pytest.raises(ValueError):
        plot_attention_heads(w[0], tokens_q, tokens_k)  # 2 次元


def test_plot_attention_single_head() -> None:
    w = attention_weights(1, 5, 5)[0]
    tokens = ["a", "=", "b", "+", "1"]
    fig = plot_attention(w.numpy(), tokens, title="1 ヘッド")
    render(fig)
    assert len(fig.axes) == 2  # ヒートマップとカラーバー
    ax = fig.axes[0]
    np.testing.assert_allclose(image_data(ax), w.numpy())
    assert tick_texts(ax.get_xticklabels()) == tokens
    assert tick_texts(ax.get_yticklabels()) == tokens
    with pytest.raises(ValueError):
        plot_attention(w, tokens[:4])


# ---- 位置エンコーディング ---------------------------------------------


def sinusoidal(positions: int, d_model: int) -> torch.Tensor:
    """Vaswani et al. (2017) の正弦波の位置エンコーディング（入力用）。"""
    pos = torch.arange(positions, dtype=torch.float64)[:, None]
    i = torch.arange(0, d_model, 2, dtype=torch.float64)
    angle = pos / 10000 ** (i / d_model)
    pe = torch.zeros(positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe


def test_plot_positional_encoding() -> None:
    pe = sinusoidal(50, 32)
    fig = plot_positional_encoding(pe, title="位置エンコーディング")
    render(fig)
    heatmap = [ax for ax in fig.axes if ax.images]
    assert len(heatmap) == 1
    np.testing.assert_array_equal(image_data(heatmap[0]), pe)
    wave = next(ax for ax in fig.axes if ax.lines)
    # 既定では 4 本、d_model / 2 より前の偶数次元（sin の側）を描く
    assert len(wave.lines) == 4
    for line in wave.lines:
        d = int(str(line.get_label()).removeprefix("次元 "))
        assert d % 2 == 0 and d < 16
        np.testing.assert_array_equal(line.get_ydata(), pe[:, d].numpy())


def test_plot_positional_encoding_custom_dims() -> None:
    pe = sinusoidal(20, 8).numpy()
    fig = plot_positional_encoding(pe, dims=[1, 7])
    render(fig)
    wave = next(ax for ax in fig.axes if ax.lines)
    np.testing.assert_array_equal(wave.lines[1].get_ydata(), pe[:, 7])
    with pytest.raises(ValueError):
        plot_positional_encoding(pe[0])


# ---- 埋め込み ----------------------------------------------------------


def test_plot_embeddings_2d() -> None:
    x = random_embeddings(n=6, d=5)
    labels = ["if", "else", "while", "for", "関数", "変数"]
    fig = plot_embeddings_2d(x, labels, title="埋め込み")
    render(fig)
    (ax,) = fig.axes
    offsets = np.asarray(ax.collections[0].get_offsets())
    np.testing.assert_allclose(offsets, project_2d(x).numpy())
    assert [t.get_text() for t in ax.texts] == labels
    # 軸名の割合は特異値の 2 乗の割合（NumPy の参照実装）と一致
    _, s = numpy_pca(x.numpy())
    ratio = s**2 / np.sum(s**2)
    assert f"{ratio[0]:.0%}" in ax.get_xlabel()
    assert f"{ratio[1]:.0%}" in ax.get_ylabel()
    with pytest.raises(ValueError):
        plot_embeddings_2d(x, labels[:5])


# ---- 学習曲線 ----------------------------------------------------------


def training_records() -> list[dict[str, object]]:
    records: list[dict[str, object]] = []
    for step in range(0, 200, 5):
        record: dict[str, object] = {
            "step": step,
            "train_loss": 4.0 * math.exp(-step / 80) + 1.0,
        }
        if step % 50 == 0:  # 検証は間引いて記録される
            record["val_loss"] = 4.2 * math.exp(-step / 90) + 1.1
        records.append(record)
    return records


def test_plot_training_curves() -> None:
    records = training_records()
    fig = plot_training_curves(records, title="学習曲線")
    render(fig)
    (ax,) = fig.axes
    assert len(ax.lines) == 2
    train, val = ax.lines
    np.testing.assert_array_equal(
        train.get_xdata(), [r["step"] for r in records]
    )
    np.testing.assert_array_equal(
        train.get_ydata(), [r["train_loss"] for r in records]
    )
    with_val = [r for r in records if "val_loss" in r]
    np.testing.assert_array_equal(
        val.get_xdata(), [r["step"] for r in with_val]
    )
    np.testing.assert_array_equal(
        val.get_ydata(), [r["val_loss"] for r in with_val]
    )
    legend = ax.get_legend()
    assert legend is not None and len(legend.get_texts()) == 2


def test_plot_training_curves_missing_keys() -> None:
    records = training_records()
    fig = plot_training_curves(
        records, keys=["train_loss", "lr"], logy=True
    )
    render(fig)
    assert len(fig.axes[0].lines) == 1  # 記録にない lr は描かない
    assert fig.axes[0].get_yscale() == "log"
    with pytest.raises(ValueError):
        plot_training_curves(records, keys=["accuracy"])
    with pytest.raises(TypeError):
        plot_training_curves([{"step": 0, "train_loss": "nan?"}])


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_does_not_change_the_font() -> None:
    """import だけでは既定のフォントを変えず、use_japanese_font で変える。"""
    result = _run_python(
        "import matplotlib as mpl\n"
        "before = list(mpl.rcParams['font.family'])\n"
        "import easy_transformer.viz as viz\n"
        "assert list(mpl.rcParams['font.family']) == before, before\n"
        "viz.use_japanese_font()\n"
        "print(mpl.rcParams['font.family'])\n"
    )
    assert result.returncode == 0, result.stderr
    assert "IPAexGothic" in result.stdout


def test_missing_matplotlib_says_how_to_install() -> None:
    result = _run_python(
        "import sys\n"
        "sys.modules['matplotlib'] = None  # 入っていない環境のまね\n"
        "import easy_transformer.viz\n"
    )
    assert result.returncode != 0
    assert "pip install 'easy-transformer[figures]'" in result.stderr
