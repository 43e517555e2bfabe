"""第15章: 因果マスクの漏れを見つける 2 つの検査。

- ``future_leak``: 位置 t より後ろのトークンだけを書き換え、位置 t 以前の
  出力が変わるかを見る。因果的なモデルなら変わらない（差は 0）。
- ``prefix_loss``: 各位置の予測を、その位置までの接頭辞だけを読ませて
  求めた損失。生成のときにモデルが置かれる条件と同じで、因果的な
  モデルなら教師強制の損失（全体を一度に読ませた損失）と一致する。
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@torch.no_grad()
def future_leak(model: nn.Module, ids: Tensor, t: int) -> float:
    """位置 t+1 以降を書き換えたときの、位置 0〜t のロジットの最大の差。"""
    model.eval()
    changed = ids.clone()
    # 後ろの部分を、別のトークン（ID を 1 つずらしたもの）に置き換える
    vocab_size = int(model(ids[:, :1]).size(-1))
    changed[:, t + 1 :] = (ids[:, t + 1 :] + 1) % vocab_size
    before = model(ids)[:, : t + 1]
    after = model(changed)[:, : t + 1]
    return float((before - after).abs().max())


@torch.no_grad()
def prefix_loss(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """位置 t の予測を x[:, :t+1] だけから求めたときの交差エントロピー。"""
    model.eval()
    logits = torch.stack(
        [model(x[:, : t + 1])[:, -1] for t in range(x.size(1))], dim=1
    )
    return float(F.cross_entropy(logits.flatten(0, 1), y.flatten()))


@torch.no_grad()
def teacher_forced_loss(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """x 全体を一度に読ませたときの交差エントロピー（学習と同じ条件）。"""
    model.eval()
    return float(F.cross_entropy(model(x).flatten(0, 1), y.flatten()))
