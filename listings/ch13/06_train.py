"""第13章 (6/6): コピー課題のデータ、学習ループ、貪欲法による出力。

課題は「3 1 4 | 3 1 4 .」のように、区切り '|' の後に同じ数字の列を
書き、'.' で終えること。損失は '|' より後ろの部分だけで測る。

>>> import importlib, torch
>>> tr = importlib.import_module("listings.ch13.06_train")
>>> x, y = tr.make_batch(["314", "27"])
>>> tr.decode(x[0].tolist()), tr.decode(x[1].tolist())
('314|314', '27|27._')
>>> y[0].tolist()  # -100 は損失に数えない位置
[-100, -100, -100, 3, 1, 4, 11]
>>> y[1].tolist()
[-100, -100, 2, 7, 11, -100, -100]
"""

import importlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

cfg = importlib.import_module("listings.ch13.01_config")
gpt = importlib.import_module("listings.ch13.05_model")

VOCAB = "0123456789|._"  # '|' が区切り、'.' が終わり、'_' が詰め物
SEP, EOS, PAD = 10, 11, 12
IGNORE = -100  # F.cross_entropy の ignore_index の既定値


def encode(text: str) -> list[int]:
    return [VOCAB.index(ch) for ch in text]


def decode(ids: list[int]) -> str:
    return "".join(VOCAB[i] for i in ids)


def random_strings(
    n: int, gen: torch.Generator, max_len: int = 8
) -> list[str]:
    """長さ 1〜max_len の数字の列を n 本作る。"""
    lengths = torch.randint(1, max_len + 1, (n,), generator=gen).tolist()
    return [
        "".join(map(str, torch.randint(10, (k,), generator=gen).tolist()))
        for k in lengths
    ]


def make_batch(strings: list[str]) -> tuple[Tensor, Tensor]:
    """数字の列から (入力, 正解) を作る。正解は入力を 1 つずらしたもの。"""
    rows = [encode(s + "|" + s + ".") for s in strings]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), PAD)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    x, y = ids[:, :-1], ids[:, 1:].clone()
    lengths = torch.tensor([len(s) for s in strings])
    # 位置 t の正解は ids[t + 1]。t が '|' より前なら問題文なので数えない
    y[torch.arange(width - 1) < lengths[:, None]] = IGNORE
    y[y == PAD] = IGNORE
    return x, y


def loss_fn(model: torch.nn.Module, x: Tensor, y: Tensor) -> Tensor:
    logits = model(x)
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)),
        y.reshape(-1),
        ignore_index=IGNORE,
    )


def lr_at(step: int, steps: int, peak: float, warmup: int) -> float:
    """線形のウォームアップのあと、余弦の形で 0 まで下げる。"""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


# 貪欲法で出力を作り、完全一致率を測る
@torch.no_grad()
def greedy(model: torch.nn.Module, prompt: Tensor, n_new: int) -> Tensor:
    """prompt (batch, seq) の続きを n_new 個、毎回最大のロジットで選ぶ。"""
    ids = prompt
    for _ in range(n_new):
        next_id = model(ids)[:, -1].argmax(dim=-1)
        ids = torch.cat([ids, next_id[:, None]], dim=1)
    return ids[:, prompt.size(1) :]


def copy(model: torch.nn.Module, digits: str) -> str:
    """学習したモデルに「digits|」の続きを書かせる（'.' の手前まで）。"""
    model.eval()
    out = greedy(
        model, torch.tensor([encode(digits + "|")]), len(digits) + 1
    )
    return decode(out[0].tolist()).split(".")[0]


@torch.no_grad()
def exact_match(model: torch.nn.Module, strings: list[str]) -> float:
    """'.' まで 1 文字も違わずに書けた列の割合。長さごとにまとめて解く。"""
    model.eval()
    correct = 0
    for k in sorted({len(s) for s in strings}):
        group = [s for s in strings if len(s) == k]
        prompt = torch.tensor([encode(s + "|") for s in group])
        answer = torch.tensor([encode(s + ".") for s in group])
        out = greedy(model, prompt, k + 1)
        correct += int((out == answer).all(dim=1).sum())
    return correct / len(strings)


# 学習の記録
@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_exact: list[float] = field(default_factory=list)


def train(
    c: "cfg.Config",
    steps: int = 400,
    batch_size: int = 64,
    peak_lr: float = 3e-3,
    warmup: int = 50,
    clip: float = 1.0,
    eval_every: int = 50,
    seed: int = 0,
    max_len: int = 8,
) -> tuple["gpt.GPT", History]:
    torch.manual_seed(seed)
    model = gpt.GPT(c)
    opt = torch.optim.AdamW(
        model.parameters(), lr=peak_lr, weight_decay=0.01
    )
    gen = torch.Generator().manual_seed(seed)
    # 検証データは学習に使わない。別のシードで 1 度だけ作る
    val = random_strings(400, torch.Generator().manual_seed(seed + 1))
    val_x, val_y = make_batch(val)
    hist = History()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, peak_lr, warmup)
        model.train()  # ドロップアウトを効かせる
        x, y = make_batch(random_strings(batch_size, gen, max_len))
        loss = loss_fn(model, x, y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        hist.train_loss.append(loss.item())
        if (step + 1) % eval_every == 0:
            model.eval()  # ドロップアウトを止める
            with torch.no_grad():
                hist.val_loss.append(loss_fn(model, val_x, val_y).item())
            hist.val_exact.append(exact_match(model, val))
            hist.eval_steps.append(step + 1)
    return model, hist


def main() -> None:
    """本文の設定で学習し、到達点を benchmarks/results/ch13_copy.json へ。

    リポジトリのルートで python -m listings.ch13.06_train として実行する。
    """
    torch.set_num_threads(1)
    c = cfg.Config()
    start = time.perf_counter()
    model, hist = train(c)
    seconds = time.perf_counter() - start
    load = os.getloadavg()[0]  # 共有のマシンでは、時間はこの負荷で変わる
    steps = len(hist.train_loss)
    result = {
        "config": asdict(c),
        "steps": steps,
        "threads": torch.get_num_threads(),
        "seconds": seconds,
        "load_average": load,
        "history": asdict(hist),
        "book": {
            "steps": f"{steps}",
            "train_loss": f"{sum(hist.train_loss[-10:]) / 10:.3f}",
            "val_loss": f"{hist.val_loss[-1]:.3f}",
            "val_exact": f"{hist.val_exact[-1]:.1%}",
            "seconds": f"{seconds:.0f} 秒",
            "load": f"{load:.1f}",
            "params": f"{sum(p.numel() for p in model.parameters()):,}",
        },
    }
    root = Path(__file__).resolve().parents[2]
    out = root / "benchmarks" / "results" / "ch13_copy.json"
    text = json.dumps(result, ensure_ascii=False, indent=2)
    out.write_text(text + "\n", encoding="utf-8")
    print(json.dumps(result["book"], ensure_ascii=False))


if __name__ == "__main__":
    main()
