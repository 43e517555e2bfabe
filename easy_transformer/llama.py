"""Llama 形式の GPT と、Hugging Face の Llama の重みの読み込み（第17章）。

Llama 形式のモデルは別のクラスにせず、gpt.GPT の設定で作る
（RMSNorm、SwiGLU、RoPE、GQA、出力層を共有しない、バイアスなし）。
ここには、その設定を作る関数と、LlamaForCausalLM の state_dict を
名前の対応表で読み込む関数だけを置く。
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from easy_transformer.gpt import GPT, GPTConfig


def llama_config(
    vocab_size: int,
    block_size: int,
    n_layers: int,
    n_heads: int,
    d_model: int,
    d_ff: int,
    n_kv_heads: int | None = None,
    eps: float = 1e-6,
    rope_base: float = 10000.0,
    tie_embeddings: bool = False,
) -> GPTConfig:
    """Llama 形式の GPTConfig（eps と rope_base の既定値は HF と同じ）。"""
    return GPTConfig(
        vocab_size=vocab_size,
        block_size=block_size,
        n_layers=n_layers,
        n_heads=n_heads,
        d_model=d_model,
        bias=False,
        layer_norm_eps=eps,
        norm="rmsnorm",
        mlp="swiglu",
        d_ff=d_ff,
        position="rope",
        rope_base=rope_base,
        n_kv_heads=n_kv_heads,
        tie_embeddings=tie_embeddings,
    )


# Llama の 1 層の重みの名前 → こちらの名前
LLAMA_LAYER_NAMES = {
    "input_layernorm.weight": "self_attn_res.norm.weight",
    "self_attn.q_proj.weight": "self_attn.q_proj.weight",
    "self_attn.k_proj.weight": "self_attn.k_proj.weight",
    "self_attn.v_proj.weight": "self_attn.v_proj.weight",
    "self_attn.o_proj.weight": "self_attn.out_proj.weight",
    "post_attention_layernorm.weight": "ffn_res.norm.weight",
    "mlp.gate_proj.weight": "ffn.fc_gate.weight",
    "mlp.up_proj.weight": "ffn.fc1.weight",
    "mlp.down_proj.weight": "ffn.fc2.weight",
}


def llama_name_map(n_layers: int, tied: bool) -> dict[str, str]:
    """LlamaForCausalLM の重みの名前 → こちらの名前（全部）。"""
    names = {
        "model.embed_tokens.weight": "tok_emb.embed.weight",
        "model.norm.weight": "norm.weight",
    }
    if not tied:
        names["lm_head.weight"] = "lm_head.weight"
    for i in range(n_layers):
        names |= {
            f"model.layers.{i}.{k}": f"blocks.{i}.{v}"
            for k, v in LLAMA_LAYER_NAMES.items()
        }
    return names


def _config_from_weights(
    sd: Mapping[str, Tensor],
    n_heads: int,
    eps: float,
    rope_base: float,
    block_size: int,
) -> GPTConfig:
    """重みの形から大きさを読み取り、Llama 形式の GPTConfig を作る。"""
    vocab_size, d_model = sd["model.embed_tokens.weight"].shape
    n_layers = 0
    while f"model.layers.{n_layers}.input_layernorm.weight" in sd:
        n_layers += 1
    first = "model.layers.0."
    d_ff = sd[first + "mlp.up_proj.weight"].shape[0]
    d_kv = sd[first + "self_attn.k_proj.weight"].shape[0]
    n_kv_heads = d_kv // (d_model // n_heads)
    emb = sd["model.embed_tokens.weight"]
    # 共有していれば lm_head.weight は無いか、同じ値
    tied = "lm_head.weight" not in sd or torch.equal(
        sd["lm_head.weight"], emb
    )
    return llama_config(
        vocab_size=vocab_size,
        block_size=block_size,
        n_layers=n_layers,
        n_heads=n_heads,
        d_model=d_model,
        d_ff=d_ff,
        n_kv_heads=n_kv_heads,
        eps=eps,
        rope_base=rope_base,
        tie_embeddings=tied,
    )


def gpt_from_hf_llama_state_dict(
    state_dict: Mapping[str, Tensor],
    n_heads: int,
    eps: float = 1e-6,
    rope_base: float = 10000.0,
    block_size: int = 2048,
) -> GPT:
    """Hugging Face の LlamaForCausalLM の state_dict から GPT を作る。

    語彙数・層数・次元・FFN の幅・キーと値のヘッド数は重みの形から
    読み取る。形に現れない n_heads、eps（rms_norm_eps）、rope_base
    （rope_theta）、block_size（max_position_embeddings）は引数で
    受け取る。nn.Linear どうしなので、GPT-2 と違って転置は要らない。
    RoPE は HF と同じ前半・後半の組なので、q と k の並べ替えも要らない。
    """
    sd = {
        k: v
        for k, v in state_dict.items()
        if not k.endswith("rotary_emb.inv_freq")  # 古い版のバッファ
    }
    if "model.embed_tokens.weight" not in sd:
        raise ValueError(
            "state_dict に model.embed_tokens.weight がありません。"
            "LlamaForCausalLM の state_dict() をそのまま渡してください。"
        )
    config = _config_from_weights(sd, n_heads, eps, rope_base, block_size)
    model = GPT(config)
    tied = config.tie_embeddings
    names = llama_name_map(config.n_layers, tied)
    unknown = sorted(set(sd) - set(names) - {"lm_head.weight"})
    if unknown:
        raise ValueError(
            f"Llama にないキーがあります: {unknown[:5]}。別の種類の"
            "モデルの state_dict でないか確かめてください。"
        )
    loaded = {ours: sd[theirs] for theirs, ours in names.items()}
    if tied:
        loaded["lm_head.weight"] = loaded["tok_emb.embed.weight"]
    # strict=True: 対応表の漏れや形の違いはここでエラーになる
    model.load_state_dict(loaded, strict=True)
    return model.eval()
