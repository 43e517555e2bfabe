"""テストで共有する補助（テストどうしが import し合わないように、ここに置く）。

- 本に載ったコード（listings/）を読み込む `load_listing`。
  torch.nn の重みを本書の多頭注意に写す `load_from_torch` は、第9章の
  listing そのものをテストの道具に使う。
- 参照モデルのパラメータを乱数にする `randomize`。既定の初期値
  （LayerNorm の 1 と 0、バイアスの 0）のままでは、LN やバイアスの
  写し間違いが比較に現れないため。
- torch.nn の層から本書の層へ重みを写す関数と、写し間違いを
  わざと入れる `swap_params`（変異のテスト用）。
- 学習のテスト（test_training、test_ddp）が使う小さな bigram モデルと
  データ。
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from easy_transformer.attention import MultiHeadAttention
from easy_transformer.layers import DecoderLayer, EncoderLayer

ROOT = Path(__file__).resolve().parent.parent


def load_listing(relpath: str) -> ModuleType:
    """listings/ の下のファイル（名前が数字で始まる）をモジュールとして読む。"""
    path = ROOT / "listings" / relpath
    name = "listing_" + relpath.replace("/", "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ch09 = load_listing("ch09/02_load_from_torch.py")


def load_from_torch(
    ours: MultiHeadAttention, ref: nn.MultiheadAttention
) -> None:
    """第9章の listing の load_from_torch（本に載ったコードをそのまま使う）。"""
    _ch09.load_from_torch(ours, ref)


def randomize(module: nn.Module, scale: float = 0.3) -> None:
    """全パラメータ（LN の倍率と足し、バイアスも）を乱数にする。"""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * scale)


def swap_params(module: nn.Module, a: str, b: str) -> None:
    """パラメータ a と b の値を入れ替える（同じ形のもの）。

    正しく写したあとに呼ぶと、「a と b を取り違えて写した」状態になる。
    """
    params = dict(module.named_parameters())
    with torch.no_grad():
        pa, pb = params[a], params[b]
        tmp = pa.clone()
        pa.copy_(pb)
        pb.copy_(tmp)


def copy_encoder_layer(ours: nn.Module, ref: nn.Module) -> None:
    """nn.TransformerEncoderLayer の重みを EncoderLayer に写す。"""
    assert isinstance(ours, EncoderLayer)
    assert isinstance(ref, nn.TransformerEncoderLayer)
    load_from_torch(ours.self_attn, ref.self_attn)
    ours.ffn.fc1.load_state_dict(ref.linear1.state_dict())
    ours.ffn.fc2.load_state_dict(ref.linear2.state_dict())
    ours.self_attn_res.norm.load_state_dict(ref.norm1.state_dict())
    ours.ffn_res.norm.load_state_dict(ref.norm2.state_dict())


def copy_decoder_layer(ours: nn.Module, ref: nn.Module) -> None:
    """nn.TransformerDecoderLayer の重みを DecoderLayer に写す。"""
    assert isinstance(ours, DecoderLayer)
    assert isinstance(ref, nn.TransformerDecoderLayer)
    assert ours.cross_attn is not None and ours.cross_attn_res is not None
    load_from_torch(ours.self_attn, ref.self_attn)
    load_from_torch(ours.cross_attn, ref.multihead_attn)
    ours.ffn.fc1.load_state_dict(ref.linear1.state_dict())
    ours.ffn.fc2.load_state_dict(ref.linear2.state_dict())
    ours.self_attn_res.norm.load_state_dict(ref.norm1.state_dict())
    ours.cross_attn_res.norm.load_state_dict(ref.norm2.state_dict())
    ours.ffn_res.norm.load_state_dict(ref.norm3.state_dict())


def right_padded_ids(lengths: list[int], seq: int) -> Tensor:
    """長さ lengths の 1 の列を、右を 0 で埋めて (len(lengths), seq) に。"""
    return torch.tensor([[1] * n + [0] * (seq - n) for n in lengths])


# ---- 学習のテストの小さな言語モデル -------------------------------------


class Bigram(nn.Module):
    """直前の 1 文字だけから次の文字を当てる、いちばん小さな言語モデル。"""

    def __init__(
        self,
        vocab: int,
        dim: int = 16,
        dropout: float = 0.0,
        tie: bool = False,
    ) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(dim, vocab)
        if tie:
            self.head.weight = self.emb.weight

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.head(self.drop(self.norm(self.emb(x))))
        return logits


def char_windows(ids: Tensor, seq_len: int) -> TensorDataset:
    """重ならない切れ端 (入力, 1 つずらした正解) を並べたデータセット。"""
    n = (len(ids) - 1) // seq_len
    x = ids[: n * seq_len].view(n, seq_len)
    y = ids[1 : n * seq_len + 1].view(n, seq_len)
    return TensorDataset(x, y)
