"""第16章: 逆ポーランド記法を出力するときの、クロス注意の重み。

benchmarks/bench_tasks.py が保存した学習済みの rpn のモデル
（benchmarks/results/rpn_model.pt）で 1 つの式を変換し、デコーダの
最後の層のクロス注意（出力の各文字が、入力のどの文字を見たか）を
ヘッドごとのヒートマップにする。モデルのファイルが無ければ、極小の
設定でその場で学習する（数秒。重みは意味のある形にならない）。
"""

from __future__ import annotations

import torch
from _figlib import ROOT, FigureWriter, seed_everything
from torch import Tensor, nn

from easy_transformer.attention import MultiHeadAttention, padding_mask
from easy_transformer.model_io import load_model
from easy_transformer.seq2seq_experiment import (
    decode_output,
    predict,
    seq2seq_config,
    train_seq2seq,
)
from easy_transformer.tasks import BOS_ID, EOS_ID, PAD_ID
from easy_transformer.tokenizer import CharTokenizer
from easy_transformer.transformer import Transformer
from easy_transformer.viz import plot_attention_heads

MODEL = ROOT / "benchmarks" / "results" / "rpn_model.pt"
# 深さ 3（学習と同じ範囲）で、演算子の並べ替えが起こる式
SOURCE = "x*(y+3)-z/2"


def load_rpn_model() -> tuple[Transformer, CharTokenizer]:
    if MODEL.exists():
        loaded = load_model(MODEL)
        assert isinstance(loaded.model, Transformer)
        assert isinstance(loaded.codec, CharTokenizer)
        return loaded.model, loaded.codec
    config = seq2seq_config("rpn", tiny=True, max_steps=30)
    result = train_seq2seq(
        "rpn", config=config, device="cpu", progress=False
    )
    return result.model.eval(), result.vocab


def cross_attention(
    model: Transformer, src: Tensor, tgt: Tensor
) -> list[Tensor]:
    """教師強制で tgt を読ませ、各層のクロス注意の重みを集める。

    重みは層ごとに (heads, tgt_len, src_len)。
    """
    weights: list[Tensor] = []

    def keep(
        module: nn.Module, inputs: object, output: tuple[Tensor, Tensor]
    ) -> None:
        weights.append(output[1][0].detach())

    hooks = []
    for layer in model.decoder.layers:
        attn = layer.cross_attn
        assert isinstance(attn, MultiHeadAttention)
        attn.backend = "manual"  # "sdpa" は重みを返さない
        hooks.append(attn.register_forward_hook(keep))
    try:
        with torch.no_grad():
            model(src, tgt, padding_mask(src, PAD_ID))
    finally:
        for hook in hooks:
            hook.remove()
    return weights


def main() -> None:
    seed_everything(0)
    # スレッドの数で浮動小数点の足し算の順が変わらないように
    torch.set_num_threads(1)
    model, vocab = load_rpn_model()
    (output,) = predict(model, [SOURCE], vocab, max_new_tokens=40)
    src = torch.tensor([vocab.encode(SOURCE)])
    tgt = torch.tensor([[BOS_ID, *vocab.encode(output)]])
    weights = cross_attention(model, src, tgt)
    # デコーダの t 番目の位置は、出力の t 番目の文字を作る
    produced = [*output, "<eos>"]
    assert decode_output(vocab, [*tgt[0].tolist(), EOS_ID]) == output
    fig = plot_attention_heads(
        weights[-1],
        tokens_q=[c if c != " " else "␣" for c in produced],
        tokens_k=list(SOURCE),
        title=f"{SOURCE} → {output}（デコーダの最後の層のクロス注意）",
        ncols=2,
    )
    FigureWriter(__file__).save(fig)


if __name__ == "__main__":
    main()
