"""エンコーダ・デコーダ型の Transformer（第3部・第4部）。

原論文（Vaswani ら, 2017）の構成を、層を積んだ `Encoder` と `Decoder`、
それらに埋め込みと出力層を付けた `Transformer` の順に組み立てる。
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from easy_transformer.embedding import (
    SinusoidalPositionalEncoding,
    TokenEmbedding,
)
from easy_transformer.generation import beam_search, sample_next_token
from easy_transformer.layers import DecoderLayer, EncoderLayer, LayerNorm


@dataclass
class TransformerConfig:
    """Transformer の大きさと構成。既定値は原論文の base モデル。"""

    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 512
    n_heads: int = 8
    n_encoder_layers: int = 6
    n_decoder_layers: int = 6
    d_ff: int = 2048
    dropout: float = 0.1
    max_len: int = 512
    activation: str = "relu"
    norm_first: bool = False  # 原論文は Post-LN
    layer_norm_eps: float = 1e-5
    # 原論文は出力層とデコーダの埋め込みで同じ重みを使う
    tie_weights: bool = True


class Encoder(nn.Module):
    """エンコーダ層を積み、Pre-LN なら最後に正規化する。"""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        c = config
        self.layers = nn.ModuleList(
            EncoderLayer(
                c.d_model,
                c.n_heads,
                c.d_ff,
                c.dropout,
                c.activation,
                c.norm_first,
                c.layer_norm_eps,
            )
            for _ in range(c.n_encoder_layers)
        )
        # Pre-LN では最後の層の出力が正規化を通らないので、ここで通す
        self.norm = (
            LayerNorm(config.d_model, config.layer_norm_eps)
            if config.norm_first
            else None
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        for layer in self.layers:
            x = layer(x, mask)
        return x if self.norm is None else self.norm(x)


class Decoder(nn.Module):
    """デコーダ層を積み、Pre-LN なら最後に正規化する。"""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        c = config
        self.layers = nn.ModuleList(
            DecoderLayer(
                c.d_model,
                c.n_heads,
                c.d_ff,
                c.dropout,
                c.activation,
                c.norm_first,
                c.layer_norm_eps,
            )
            for _ in range(c.n_decoder_layers)
        )
        self.norm = (
            LayerNorm(config.d_model, config.layer_norm_eps)
            if config.norm_first
            else None
        )

    def forward(
        self,
        x: Tensor,
        memory: Tensor,
        mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
    ) -> Tensor:
        for layer in self.layers:
            x = layer(x, memory, mask, memory_mask)
        return x if self.norm is None else self.norm(x)


class Transformer(nn.Module):
    """ソースの列からターゲットの列を作るエンコーダ・デコーダ型のモデル。

    埋め込み（×√d_model）→ 正弦波の位置 → N 層 →（Pre-LN なら）最終
    正規化 → 出力層、をエンコーダ側とデコーダ側に持つ。

    パディングのマスクは `padding_mask(ids, pad_id)` で作った
    (batch, 1, 1, seq) の bool（True が本物のトークン）を渡す。
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        d_model = config.d_model
        self.src_embed = TokenEmbedding(config.src_vocab_size, d_model)
        self.tgt_embed = TokenEmbedding(config.tgt_vocab_size, d_model)
        self.pos = SinusoidalPositionalEncoding(d_model, config.max_len)
        self.dropout = nn.Dropout(config.dropout)
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.out = nn.Linear(d_model, config.tgt_vocab_size, bias=False)
        # nn.Transformer と同じく、行列の重みを Xavier の一様分布で
        # 初期化する（層を通っても出力の分散が変わりにくい）
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        if config.tie_weights:
            self.out.weight = self.tgt_embed.embed.weight

    def encode(
        self, src: Tensor, src_padding_mask: Tensor | None = None
    ) -> Tensor:
        """ソースの ID (batch, src_len) → memory (batch, src_len, d)。"""
        x: Tensor = self.dropout(self.pos(self.src_embed(src)))
        x = self.encoder(x, src_padding_mask)
        return x

    def decode(
        self,
        tgt: Tensor,
        memory: Tensor,
        src_padding_mask: Tensor | None = None,
        tgt_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """ターゲットの ID (batch, tgt_len) → ロジット (同, vocab)。"""
        x: Tensor = self.dropout(self.pos(self.tgt_embed(tgt)))
        x = self.decoder(x, memory, tgt_padding_mask, src_padding_mask)
        x = self.out(x)
        return x

    def forward(
        self,
        src: Tensor,
        tgt: Tensor,
        src_padding_mask: Tensor | None = None,
        tgt_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """教師強制（teacher forcing）で、ターゲットの各位置の次を予測。"""
        memory = self.encode(src, src_padding_mask)
        return self.decode(tgt, memory, src_padding_mask, tgt_padding_mask)

    @torch.no_grad()
    def greedy_decode(
        self,
        src: Tensor,
        bos_id: int,
        eos_id: int | None,
        max_new_tokens: int,
        src_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """各位置で最も確率の高いトークンを選んでターゲットを作る。

        src (batch, src_len) → (batch, 1 + 生成した長さ)（先頭は bos_id）。
        eos_id を出した列は残りを eos_id で埋め、全部の列が出し終えたら
        止める（eos_id=None なら max_new_tokens 個まで作る）。
        """
        memory = self.encode(src, src_padding_mask)
        ys = torch.full((src.size(0), 1), bos_id, device=src.device)
        done = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
        for _ in range(max_new_tokens):
            logits = self.decode(ys, memory, src_padding_mask)[:, -1]
            next_id = sample_next_token(logits, do_sample=False)
            if eos_id is not None:
                next_id = next_id.masked_fill(done, eos_id)
                done |= next_id == eos_id
            ys = torch.cat([ys, next_id[:, None]], dim=1)
            if done.all():
                break
        return ys

    @torch.no_grad()
    def beam_search(
        self,
        src: Tensor,
        bos_id: int,
        beam_size: int,
        max_new_tokens: int,
        eos_id: int | None = None,
        length_penalty: float = 1.0,
    ) -> Tensor:
        """ビームサーチで 1 本のソース (src_len,) を訳す。

        戻り値は bos_id で始まる 1 次元の列。
        """
        memory = self.encode(src[None])

        def step(ys: Tensor) -> Tensor:
            mem = memory.expand(ys.size(0), -1, -1)
            return F.log_softmax(self.decode(ys, mem)[:, -1], dim=-1)

        prefix = torch.tensor([bos_id], device=src.device)
        return beam_search(
            step,
            prefix,
            beam_size=beam_size,
            max_new_tokens=max_new_tokens,
            eos_id=eos_id,
            length_penalty=length_penalty,
        )
