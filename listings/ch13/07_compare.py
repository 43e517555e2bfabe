"""第13章 (7/7): 書いた GPT が、完成品 easy_transformer.gpt.GPT と同じ
関数を計算するかを、重みを写して確かめる（差分テスト）。

>>> import importlib, torch
>>> cfg = importlib.import_module("listings.ch13.01_config")
>>> cmp = importlib.import_module("listings.ch13.07_compare")
>>> ours, theirs = cmp.randomized_pair(cfg.Config())
>>> ids = torch.randint(13, (4, 20))
>>> with torch.no_grad():
...     torch.testing.assert_close(ours(ids), theirs(ids))  # 一致すれば無言
"""

import importlib

import torch

from easy_transformer.gpt import GPT, GPTConfig

cfg = importlib.import_module("listings.ch13.01_config")
gpt = importlib.import_module("listings.ch13.05_model")

# こちらの 1 層の名前 → 完成品の名前
LAYER_NAMES = {
    "ln1": "self_attn_res.norm",
    "attn.q": "self_attn.q_proj",
    "attn.k": "self_attn.k_proj",
    "attn.v": "self_attn.v_proj",
    "attn.proj": "self_attn.out_proj",
    "ln2": "ffn_res.norm",
    "mlp.up": "ffn.fc1",
    "mlp.down": "ffn.fc2",
}
TOP_NAMES = {
    "emb.tok.table.weight": "tok_emb.embed.weight",
    "emb.pos.weight": "pos_emb.embed.weight",
    "ln_f.weight": "norm.weight",
    "ln_f.bias": "norm.bias",
    "head.weight": "lm_head.weight",
}


def name_map(n_layers: int) -> dict[str, str]:
    names = dict(TOP_NAMES)
    for i in range(n_layers):
        for ours, theirs in LAYER_NAMES.items():
            for kind in ("weight", "bias"):
                names[f"blocks.{i}.{ours}.{kind}"] = (
                    f"blocks.{i}.{theirs}.{kind}"
                )
    return names


def package_config(c: "cfg.Config") -> GPTConfig:
    return GPTConfig(
        vocab_size=c.vocab_size,
        block_size=c.block_size,
        n_layers=c.n_layers,
        n_heads=c.n_heads,
        d_model=c.d_model,
        dropout=c.dropout,
    )


def randomized_pair(
    c: "cfg.Config", seed: int = 0
) -> tuple["gpt.GPT", GPT]:
    """全パラメータを乱数にした自作の GPT と、その重みを写した完成品。

    LayerNorm の倍率 1 とバイアスの 0 を初期値のまま比べると、その 2 つの
    写し間違いは見えない。だから、すべてを正規分布の乱数にしてから写す。
    """
    torch.manual_seed(seed)
    ours = gpt.GPT(c)
    with torch.no_grad():
        for p in ours.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    theirs = GPT(package_config(c))
    state = ours.state_dict()
    theirs.load_state_dict(
        {b: state[a] for a, b in name_map(c.n_layers).items()}, strict=True
    )
    return ours.eval(), theirs.eval()  # eval: ドロップアウトを止める
