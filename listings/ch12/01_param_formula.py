"""第12章: エンコーダ・デコーダ型の Transformer のパラメータを式で数える。

第10章の部品ごとの式（listings/ch10/02_param_count.py）を組み合わせる。
原論文と同じく、デコーダの埋め込みと出力層は重みを共有し、
位置エンコーディング（正弦波）はパラメータを持たない。
"""

import importlib

pc = importlib.import_module("listings.ch10.02_param_count")


def encoder_layer_params(d_model: int, d_ff: int) -> int:
    """自己注意 + FFN + 層正規化 2 つ。"""
    return (
        pc.attention_params(d_model)
        + pc.ffn_params(d_model, d_ff)
        + 2 * pc.layer_norm_params(d_model)
    )


def decoder_layer_params(d_model: int, d_ff: int) -> int:
    """自己注意 + クロス注意 + FFN + 層正規化 3 つ。"""
    return (
        2 * pc.attention_params(d_model)
        + pc.ffn_params(d_model, d_ff)
        + 3 * pc.layer_norm_params(d_model)
    )


def transformer_params(
    src_vocab: int,
    tgt_vocab: int,
    d_model: int,
    d_ff: int,
    n_encoder_layers: int,
    n_decoder_layers: int,
    share_src_tgt: bool = False,
    norm_first: bool = False,
) -> dict[str, int]:
    """部品ごとのパラメータの数と、その合計（"合計"）を返す。

    share_src_tgt=True は、ソースとターゲットで 1 つの語彙と埋め込みを
    共有する（原論文の英独翻訳の設定）。そのとき src_vocab は使わない。
    """
    counts = {
        "埋め込み（ターゲット）": tgt_vocab * d_model,
        "埋め込み（ソース）": 0 if share_src_tgt else src_vocab * d_model,
        "エンコーダ": n_encoder_layers
        * encoder_layer_params(d_model, d_ff),
        "デコーダ": n_decoder_layers * decoder_layer_params(d_model, d_ff),
        # Pre-LN では、エンコーダとデコーダの最後に層正規化が 1 つずつ
        "最後の層正規化": 2 * pc.layer_norm_params(d_model)
        if norm_first
        else 0,
    }
    counts["合計"] = sum(counts.values())
    return counts
