"""第6章: キーワード引数の対応づけを、柔らかい辞書引きで行った注意の重み。

def draw(x, y, width, height) を draw(hieght=3, x=0, width=4, y=1) と
綴りを誤って呼んだときの、仮引数（クエリ）から実引数（キー）への重み。
計算は本文のリスト（listings/ch06/01_soft_lookup.py）。
"""

from __future__ import annotations

from _figlib import FigureWriter, load_listing

from easy_transformer.viz import plot_attention

PARAMS = ["x", "y", "width", "height"]
ARGS = ["hieght", "x", "width", "y"]
VALUES = [3.0, 0.0, 4.0, 1.0]
TEMPERATURE = 0.2


def main() -> None:
    sl = load_listing("ch06/01_soft_lookup.py")
    vectors = sl.name_vectors(PARAMS + ARGS)
    query, keys = vectors[: len(PARAMS)], vectors[len(PARAMS) :]
    _, weights = sl.soft_lookup(query, keys, keys, TEMPERATURE)
    labels = [f"{a}={v:g}" for a, v in zip(ARGS, VALUES, strict=True)]
    fig = plot_attention(weights, PARAMS, labels)
    ax = fig.axes[0]
    ax.set_xlabel("実引数（キー）")
    ax.set_ylabel("仮引数（クエリ）")
    # 重みの値を各マスに書き込む（白黒の印刷でも読めるように）
    for i in range(len(PARAMS)):
        for j in range(len(ARGS)):
            w = float(weights[i, j])
            ax.text(
                j,
                i,
                f"{w:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="black" if w > 0.5 else "white",
            )
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
