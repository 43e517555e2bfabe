"""GPT: デコーダだけの言語モデル（第5部）。

GPT-2 と同じ構造を、これまでの部品（埋め込み、多頭注意、層）を組み合わせて
作る。学習する位置埋め込み、Pre-LN、tanh 近似の GELU、埋め込みと出力層の
重み共有、最後の LayerNorm。上から設定、モデル、生成、Hugging Face の
重みの読み込みの順に並べる。
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from easy_transformer.attention import KVCache
from easy_transformer.embedding import (
    LearnedPositionalEmbedding,
    TokenEmbedding,
    check_length,
)
from easy_transformer.generation import (
    apply_repetition_penalty,
    beam_search,
    sample_next_token,
)
from easy_transformer.layers import DecoderLayer, LayerNorm


@dataclass
class GPTConfig:
    """GPT の大きさ。既定値は GPT-2 small（124M パラメータ）。"""

    vocab_size: int = 50257
    block_size: int = 1024  # 一度に見られる最大のトークン数
    n_layers: int = 12
    n_heads: int = 12
    d_model: int = 768
    dropout: float = 0.0
    bias: bool = True
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads != 0:
            raise ValueError(
                f"d_model={self.d_model} が n_heads={self.n_heads} で"
                "割り切れません。各ヘッドが d_model / n_heads 次元を"
                "受け持つので、割り切れる組み合わせにしてください"
                "（例: 768 と 12）。"
            )


class GPT(nn.Module):
    """ID の列 (batch, seq) から、各位置の次のトークンのロジットを返す。"""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        # GPT-2 は埋め込みに √d_model を掛けない
        self.tok_emb = TokenEmbedding(c.vocab_size, c.d_model, scale=False)
        self.pos_emb = LearnedPositionalEmbedding(c.block_size, c.d_model)
        self.dropout = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            DecoderLayer(
                c.d_model,
                c.n_heads,
                4 * c.d_model,
                c.dropout,
                activation="gelu_tanh",
                norm_first=True,
                eps=c.layer_norm_eps,
                bias=c.bias,
                cross_attention=False,
            )
            for _ in range(c.n_layers)
        )
        self.norm = LayerNorm(c.d_model, c.layer_norm_eps, c.bias)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        # 入力の「ID → ベクトル」と出力の「ベクトル → ID のスコア」に
        # 同じ表を使う。パラメータが減り、似た語が似たスコアを持つ
        self.lm_head.weight = self.tok_emb.embed.weight
        self.apply(self._init_weights)
        # 残差の足し算は層の数だけ積み重なるので、足し込む側の射影を
        # 1/√(2 × 層数) 倍に小さくして、出力の分散が育たないようにする
        std = 0.02 / math.sqrt(2 * c.n_layers)
        for name, p in self.named_parameters():
            if name.endswith(("out_proj.weight", "fc2.weight")):
                nn.init.normal_(p, mean=0.0, std=std)

    def _init_weights(self, module: nn.Module) -> None:
        """GPT-2 の初期化: 重みは平均 0、標準偏差 0.02 の正規分布。"""
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(
        self, ids: Tensor, caches: list[KVCache] | None = None
    ) -> Tensor:
        """ids (batch, seq) → ロジット (batch, seq, vocab_size)。

        caches（層ごとの KVCache）を渡すと、ids はキャッシュにある位置の
        続きとして扱い、その位置のキーと値をキャッシュに足す。
        """
        if ids.dim() != 2:
            raise ValueError(
                "ids は (batch, seq) の 2 次元で渡してください。"
                f"いまの形は {tuple(ids.shape)} です。1 本の列なら"
                " ids[None] でバッチの次元を足してください。"
            )
        start = 0 if caches is None else caches[0].length
        x = self.dropout(self.pos_emb(self.tok_emb(ids), start))
        for i, block in enumerate(self.blocks):
            x = block(x, cache=None if caches is None else caches[i])
        logits: Tensor = self.lm_head(self.norm(x))
        return logits

    @torch.no_grad()
    def generate(
        self,
        ids: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        repetition_penalty: float = 1.0,
        do_sample: bool = False,
        eos_id: int | None = None,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """ids (batch, seq) に続けて最大 max_new_tokens 個のトークンを作る。

        do_sample=False なら貪欲法、True なら温度・top-k・top-p で加工した
        分布から引く。eos_id を出した列は残りを eos_id で埋め、全部の列が
        出し終えたら止める。use_cache=True なら KV キャッシュを使う
        （結果は同じで、速い）。戻り値は ids を含む (batch, 全長)。
        """
        check_length(ids.size(-1) + max_new_tokens, self.config.block_size)
        caches = [KVCache() for _ in self.blocks] if use_cache else None
        done = torch.zeros(ids.size(0), dtype=torch.bool, device=ids.device)
        new_ids = ids  # モデルにまだ読ませていない部分
        for _ in range(max_new_tokens):
            # キャッシュが無ければ、毎回はじめから全体を読み直す
            logits = self(new_ids if caches else ids, caches)[:, -1]
            if repetition_penalty != 1.0:
                logits = apply_repetition_penalty(
                    logits, ids, repetition_penalty
                )
            next_id = sample_next_token(
                logits,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                do_sample=do_sample,
                generator=generator,
            )
            if eos_id is not None:
                next_id = next_id.masked_fill(done, eos_id)
                done |= next_id == eos_id
            new_ids = next_id[:, None]
            ids = torch.cat([ids, new_ids], dim=1)
            if done.all():
                break
        return ids

    @torch.no_grad()
    def beam_search(
        self,
        ids: Tensor,
        beam_size: int,
        max_new_tokens: int,
        length_penalty: float = 1.0,
        eos_id: int | None = None,
    ) -> Tensor:
        """ビームサーチで 1 本の列 (seq,) または (1, seq) の続きを探す。

        戻り値は ids を含む 1 次元の列。
        """
        prefix = (
            ids.reshape(-1) if ids.dim() == 2 and len(ids) == 1 else ids
        )
        check_length(
            prefix.size(-1) + max_new_tokens, self.config.block_size
        )

        def step(seqs: Tensor) -> Tensor:
            return F.log_softmax(self(seqs)[:, -1], dim=-1)

        return beam_search(
            step,
            prefix,
            beam_size=beam_size,
            max_new_tokens=max_new_tokens,
            eos_id=eos_id,
            length_penalty=length_penalty,
        )


def gpt_from_hf_state_dict(
    state_dict: Mapping[str, Tensor], n_heads: int
) -> GPT:
    """Hugging Face の GPT2LMHeadModel の state_dict から GPT を作る。

    大きさ（語彙数、最大長、層数、次元）は重みの形から読み取る。ヘッド数
    だけは形に現れないので引数で受け取る。GPT-2 の線形層は Conv1D と
    いう (入力, 出力) の向きで重みを持つので、nn.Linear の
    (出力, 入力) に転置する。
    """
    # GPT2Model の state_dict には "transformer." が付かない
    hf = {k.removeprefix("transformer."): v for k, v in state_dict.items()}
    # 古い版が保存する因果マスクのバッファ。重みではない
    ignored = {
        k for k in hf if k.endswith((".attn.bias", ".attn.masked_bias"))
    }
    used: set[str] = set(ignored)

    def take(key: str, shape: tuple[int, ...]) -> Tensor:
        if key not in hf:
            raise ValueError(
                f"state_dict に {key!r} がありません。GPT2LMHeadModel"
                "（または GPT2Model）の state_dict() をそのまま"
                "渡してください。"
            )
        if tuple(hf[key].shape) != shape:
            raise ValueError(
                f"{key!r} の形が {tuple(hf[key].shape)} で、期待した "
                f"{shape} と違います。別のモデルの重みが混ざっていないか"
                "確かめてください。"
            )
        used.add(key)
        return hf[key]

    if "wte.weight" not in hf or "wpe.weight" not in hf:
        raise ValueError(
            "state_dict に埋め込みの重み（transformer.wte.weight と "
            "transformer.wpe.weight）がありません。GPT-2 の state_dict() を"
            "渡してください。"
        )
    vocab_size, d_model = hf["wte.weight"].shape
    n_layers = 0
    while f"h.{n_layers}.ln_1.weight" in hf:
        n_layers += 1
    config = GPTConfig(
        vocab_size=vocab_size,
        block_size=hf["wpe.weight"].shape[0],
        n_layers=n_layers,
        n_heads=n_heads,
        d_model=d_model,
    )
    d = d_model
    ours = {
        "tok_emb.embed.weight": take("wte.weight", (vocab_size, d)),
        "pos_emb.embed.weight": take("wpe.weight", (config.block_size, d)),
        "norm.weight": take("ln_f.weight", (d,)),
        "norm.bias": take("ln_f.bias", (d,)),
    }
    for i in range(n_layers):
        h, b = f"h.{i}.", f"blocks.{i}."
        for hf_name, our_name in [
            ("ln_1", "self_attn_res"),
            ("ln_2", "ffn_res"),
        ]:
            ours[b + our_name + ".norm.weight"] = take(
                h + hf_name + ".weight", (d,)
            )
            ours[b + our_name + ".norm.bias"] = take(
                h + hf_name + ".bias", (d,)
            )
        # c_attn は q, k, v の射影を横に並べた 1 つの Conv1D
        w = take(h + "attn.c_attn.weight", (d, 3 * d)).t().chunk(3)
        bias = take(h + "attn.c_attn.bias", (3 * d,)).chunk(3)
        for j, name in enumerate(["q_proj", "k_proj", "v_proj"]):
            ours[b + f"self_attn.{name}.weight"] = w[j]
            ours[b + f"self_attn.{name}.bias"] = bias[j]
        for hf_name, our_name, d_in, d_out in [
            ("attn.c_proj", "self_attn.out_proj", d, d),
            ("mlp.c_fc", "ffn.fc1", d, 4 * d),
            ("mlp.c_proj", "ffn.fc2", 4 * d, d),
        ]:
            ours[b + our_name + ".weight"] = take(
                h + hf_name + ".weight", (d_in, d_out)
            ).t()
            ours[b + our_name + ".bias"] = take(
                h + hf_name + ".bias", (d_out,)
            )
    if "lm_head.weight" in hf and not torch.equal(
        take("lm_head.weight", (vocab_size, d)), hf["wte.weight"]
    ):
        raise ValueError(
            "lm_head.weight が wte.weight と違います。この GPT は埋め込みと"
            "出力層で重みを共有するので、共有していないモデルは"
            "読めません。"
        )
    unknown = sorted(set(hf) - used)
    if unknown:
        raise ValueError(
            f"GPT-2 にないキーがあります: {unknown[:5]}。層の番号が"
            "飛んでいないか、別の種類のモデルの state_dict でないか"
            "確かめてください。"
        )
    ours["lm_head.weight"] = ours["tok_emb.embed.weight"]
    model = GPT(config)
    model.load_state_dict(ours)
    return model.eval()
