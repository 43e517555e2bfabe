"""GPT: デコーダだけの言語モデル（第5部）。

GPT-2 と同じ構造を、これまでの部品（埋め込み、多頭注意、層）を組み合わせて
作る。学習する位置埋め込み、Pre-LN、tanh 近似の GELU、埋め込みと出力層の
重み共有、最後の LayerNorm。上から設定、モデル、生成、Hugging Face の
重みの読み込みの順に並べる。

設定の項目（norm、mlp、position、n_kv_heads、tie_embeddings、bias）を
変えると、同じクラスが Llama 形式（RMSNorm、SwiGLU、RoPE、GQA、出力層を
共有しない、バイアスなし）になる（第17章。設定は llama.llama_config）。
既定値は GPT-2 のまま。
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
    RotaryEmbedding,
    TokenEmbedding,
    check_length,
)
from easy_transformer.generation import (
    apply_repetition_penalty,
    beam_search,
    fill_after_eos,
    sample_next_token,
)
from easy_transformer.layers import DecoderLayer, make_norm


@dataclass
class GPTConfig:
    """GPT の大きさと形。既定値は GPT-2 small（124M パラメータ）。

    下の 7 項目は第17章で足した、GPT-2 と Llama の違いの切り替え。
    layer_norm_eps は RMSNorm の eps にも使う。
    """

    vocab_size: int = 50257
    block_size: int = 1024  # 一度に見られる最大のトークン数
    n_layers: int = 12
    n_heads: int = 12
    d_model: int = 768
    dropout: float = 0.0
    bias: bool = True
    layer_norm_eps: float = 1e-5
    norm: str = "layernorm"  # "layernorm" か "rmsnorm"
    mlp: str = "gelu"  # "gelu"（tanh 近似）か "swiglu"
    d_ff: int | None = None  # FFN の中間の幅。None なら 4 × d_model
    position: str = "learned"  # "learned"（位置埋め込み）か "rope"
    rope_base: float = 10000.0
    n_kv_heads: int | None = None  # キーと値のヘッド数。None なら n_heads
    tie_embeddings: bool = True  # 出力層に埋め込みの表を使う

    def __post_init__(self) -> None:
        for name in ["vocab_size", "block_size", "n_layers", "n_heads"]:
            if getattr(self, name) < 1:
                raise ValueError(
                    f"{name}={getattr(self, name)} です。1 以上にして"
                    "ください。"
                )
        choices = {
            "norm": ("layernorm", "rmsnorm"),
            "mlp": ("gelu", "swiglu"),
            "position": ("learned", "rope"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} は知りません。"
                    f"{' か '.join(allowed)} にしてください。"
                )
        kv = self.kv_heads
        if kv < 1 or self.n_heads % kv != 0:
            raise ValueError(
                f"n_kv_heads={kv} が n_heads={self.n_heads} の約数では"
                "ありません。クエリのヘッドを同じ数ずつの群に分けて"
                "キーと値を共有するので、約数にしてください。"
            )
        if self.d_model % self.n_heads != 0:
            raise ValueError(
                f"d_model={self.d_model} が n_heads={self.n_heads} で"
                "割り切れません。各ヘッドが d_model / n_heads 次元を"
                "受け持つので、割り切れる組み合わせにしてください"
                "（例: 768 と 12）。"
            )

    @property
    def kv_heads(self) -> int:
        """キーと値のヘッドの数（n_kv_heads が None なら n_heads）。"""
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads

    @property
    def ffn_width(self) -> int:
        """FFN の中間の幅（d_ff が None なら 4 × d_model）。"""
        return 4 * self.d_model if self.d_ff is None else self.d_ff


class GPT(nn.Module):
    """ID の列 (batch, seq) から、各位置の次のトークンのロジットを返す。"""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        # GPT-2 は埋め込みに √d_model を掛けない
        self.tok_emb = TokenEmbedding(c.vocab_size, c.d_model, scale=False)
        # 位置は、GPT-2 なら入力に足す表、RoPE なら注意の中で回す
        self.pos_emb: LearnedPositionalEmbedding | None = None
        rotary: RotaryEmbedding | None = None
        if c.position == "learned":
            self.pos_emb = LearnedPositionalEmbedding(
                c.block_size, c.d_model
            )
        else:
            head_dim = c.d_model // c.n_heads
            rotary = RotaryEmbedding(head_dim, c.block_size, c.rope_base)
        self.dropout = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            DecoderLayer(
                c.d_model,
                c.n_heads,
                c.ffn_width,
                c.dropout,
                activation="gelu_tanh" if c.mlp == "gelu" else "swiglu",
                norm_first=True,
                eps=c.layer_norm_eps,
                bias=c.bias,
                cross_attention=False,
                norm=c.norm,
                n_kv_heads=c.n_kv_heads,
                rotary=rotary,  # 全層で同じ表を使う（パラメータは無い）
            )
            for _ in range(c.n_layers)
        )
        self.norm = make_norm(c.norm, c.d_model, c.layer_norm_eps, c.bias)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        if c.tie_embeddings:
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
        x = self.tok_emb(ids)
        if self.pos_emb is not None:
            x = self.pos_emb(x, start)
        x = self.dropout(x)
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
            # キャッシュがあれば新しい部分だけを、無ければ毎回全体を読ませる
            inputs = ids if caches is None else new_ids
            logits = self(inputs, caches)[:, -1]
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
            next_id = fill_after_eos(next_id, done, eos_id)
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
        prefix = ids[0] if ids.dim() == 2 and len(ids) == 1 else ids
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


# GPT-2 の 1 層の重みの名前 → こちらの名前（c_attn は 3 つに分けるので別）
_HF_LAYER_NAMES = {
    "ln_1.weight": "self_attn_res.norm.weight",
    "ln_1.bias": "self_attn_res.norm.bias",
    "attn.c_proj.weight": "self_attn.out_proj.weight",
    "attn.c_proj.bias": "self_attn.out_proj.bias",
    "ln_2.weight": "ffn_res.norm.weight",
    "ln_2.bias": "ffn_res.norm.bias",
    "mlp.c_fc.weight": "ffn.fc1.weight",
    "mlp.c_fc.bias": "ffn.fc1.bias",
    "mlp.c_proj.weight": "ffn.fc2.weight",
    "mlp.c_proj.bias": "ffn.fc2.bias",
}


def gpt_from_hf_state_dict(
    state_dict: Mapping[str, Tensor], n_heads: int
) -> GPT:
    """Hugging Face の GPT2LMHeadModel の state_dict から GPT を作る。

    大きさ（語彙数、最大長、層数、次元）は重みの形から読み取る。ヘッド数
    だけは形に現れないので引数で受け取る。GPT-2 の層の線形変換は Conv1D
    という (入力, 出力) の向きで重みを持つので、nn.Linear の
    (出力, 入力) に転置する。
    """
    hf = _HFWeights(state_dict)
    model = GPT(hf.config(n_heads))
    n_layers, d = model.config.n_layers, model.config.d_model
    ours = model.state_dict()  # 形を確かめるためのこちらの重み
    loaded = {}
    for hf_key, our_key in _hf_name_map(n_layers).items():
        shape = tuple(ours[our_key].shape)
        if hf_key.startswith("h.") and len(shape) == 2:  # Conv1D の重み
            loaded[our_key] = _conv1d_to_linear(
                hf.take(hf_key, shape[::-1])
            )
        else:
            loaded[our_key] = hf.take(hf_key, shape)
    for i in range(n_layers):
        qkv = _split_c_attn(
            hf.take(f"h.{i}.attn.c_attn.weight", (d, 3 * d)),
            hf.take(f"h.{i}.attn.c_attn.bias", (3 * d,)),
        )
        for name, (w_part, b_part) in qkv.items():
            loaded[f"blocks.{i}.self_attn.{name}_proj.weight"] = w_part
            loaded[f"blocks.{i}.self_attn.{name}_proj.bias"] = b_part
    hf.check_rest()
    loaded["lm_head.weight"] = loaded["tok_emb.embed.weight"]  # 共有
    model.load_state_dict(loaded)
    return model.eval()


def _hf_name_map(n_layers: int) -> dict[str, str]:
    """GPT-2 の重みの名前 → こちらの名前（c_attn を除く全部）。"""
    names = {
        "wte.weight": "tok_emb.embed.weight",
        "wpe.weight": "pos_emb.embed.weight",
        "ln_f.weight": "norm.weight",
        "ln_f.bias": "norm.bias",
    }
    for i in range(n_layers):
        names |= {
            f"h.{i}.{k}": f"blocks.{i}.{v}"
            for k, v in _HF_LAYER_NAMES.items()
        }
    return names


def _conv1d_to_linear(w: Tensor) -> Tensor:
    """Conv1D の重み (入力, 出力) を nn.Linear の (出力, 入力) にする。"""
    return w.t()


def _split_c_attn(w: Tensor, b: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
    """c_attn を q, k, v の (重み, バイアス) に分ける。

    c_attn は q, k, v の射影を出力の側に q, k, v の順で横に並べた
    1 つの Conv1D。
    """
    ws = _conv1d_to_linear(w).chunk(3)
    bs = b.chunk(3)
    return {
        name: (w_part, b_part)
        for name, w_part, b_part in zip("qkv", ws, bs, strict=True)
    }


class _HFWeights:
    """GPT-2 の state_dict を、形を確かめながら 1 つずつ取り出す。

    取り出したキーを覚えておき、最後に使わなかったキーを報告する。
    """

    def __init__(self, state_dict: Mapping[str, Tensor]) -> None:
        self.weights = {
            # GPT2Model の state_dict には "transformer." が付かない
            k.removeprefix("transformer."): v
            for k, v in state_dict.items()
            # 古い版が保存する因果マスクのバッファ。重みではない
            if not k.endswith((".attn.bias", ".attn.masked_bias"))
        }
        self.used: set[str] = set()

    def config(self, n_heads: int) -> GPTConfig:
        """重みの形から大きさを読み取る（ヘッド数だけは引数）。"""
        hf = self.weights
        if "wte.weight" not in hf or "wpe.weight" not in hf:
            raise ValueError(
                "state_dict に埋め込みの重み（transformer.wte.weight と "
                "transformer.wpe.weight）がありません。GPT-2 の "
                "state_dict() を渡してください。"
            )
        n_layers = 0
        while f"h.{n_layers}.ln_1.weight" in hf:
            n_layers += 1
        if n_layers == 0:
            raise ValueError(
                "state_dict に層の重み（transformer.h.0.ln_1.weight "
                "など）がありません。GPT-2 の state_dict() をそのまま"
                "渡してください。"
            )
        vocab_size, d_model = hf["wte.weight"].shape
        return GPTConfig(
            vocab_size=vocab_size,
            block_size=hf["wpe.weight"].shape[0],
            n_layers=n_layers,
            n_heads=n_heads,
            d_model=d_model,
        )

    def take(self, key: str, shape: tuple[int, ...]) -> Tensor:
        """キー key の重みを、形が shape であることを確かめて返す。"""
        if key not in self.weights:
            raise ValueError(
                f"state_dict に {key!r} がありません。GPT2LMHeadModel"
                "（または GPT2Model）の state_dict() をそのまま"
                "渡してください。"
            )
        actual = tuple(self.weights[key].shape)
        if actual != shape:
            raise ValueError(
                f"{key!r} の形が {actual} で、期待した "
                f"{shape} と違います。別のモデルの重みが混ざっていないか"
                "確かめてください。"
            )
        self.used.add(key)
        return self.weights[key]

    def check_rest(self) -> None:
        """出力層の重みの共有と、使わなかったキーが無いことを確かめる。"""
        wte = self.weights["wte.weight"]
        if "lm_head.weight" in self.weights and not torch.equal(
            self.take("lm_head.weight", tuple(wte.shape)), wte
        ):
            raise ValueError(
                "lm_head.weight が wte.weight と違います。この GPT は"
                "埋め込みと出力層で重みを共有するので、共有していない"
                "モデルは読めません。"
            )
        unknown = sorted(set(self.weights) - self.used)
        if unknown:
            raise ValueError(
                f"GPT-2 にないキーがあります: {unknown[:5]}。層の番号が"
                "飛んでいないか、別の種類のモデルの state_dict でないか"
                "確かめてください。"
            )
