"""第5章: コード片の小さなコーパスで、トークンの埋め込みを学習する。

同じ文脈に現れるトークンほど近いベクトルになるように学習する
（skip-gram と同じ考え方。周辺のトークンを、中心のトークンの埋め込み
だけから予測する）。

>>> text = make_corpus(3)
>>> print(text)
total = size ( z )
count = size ( z )
return count
"""

import random
from collections import Counter

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from easy_transformer.tokenizer import WhitespaceTokenizer

# 行のひな形。{i} などの穴には、同じ役割の名前のどれかが入る
TEMPLATES = [
    "for {i} in range ( {n} ) :",
    "while {i} < {n} :",
    "if {i} < {n} :",
    "{i} = {i} + 1",
    "{a} = {a} + {i}",
    "{a} = {a} * {p}",
    "{a} = {f} ( {p} )",
    "def {f} ( {p} ) :",
    "return {a}",
    "return {f} ( {p} )",
]
# 役割ごとの名前: ループ変数、累積の変数、関数名、引数、上限
NAMES = {
    "i": ["i", "j", "k"],
    "a": ["total", "count", "result"],
    "f": ["area", "size", "norm"],
    "p": ["x", "y", "z"],
    "n": ["n", "10", "100"],
}


def make_corpus(n_lines: int, seed: int = 0) -> str:
    """ひな形に名前を当てはめた行を n_lines 行作る（空白区切り）。"""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        template = rng.choice(TEMPLATES)
        names = {role: rng.choice(ns) for role, ns in NAMES.items()}
        lines.append(template.format(**names))
    return "\n".join(lines)


def cooccurrence(
    lines: list[list[int]], vocab_size: int, window: int = 1
) -> Tensor:
    """C[c, o] = 中心 c の前後 window 個以内に o が現れた回数。"""
    counts: Counter[tuple[int, int]] = Counter()
    for ids in lines:
        for t, center in enumerate(ids):
            lo, hi = max(0, t - window), min(len(ids), t + window + 1)
            counts.update((center, ids[s]) for s in range(lo, hi) if s != t)
    c = torch.zeros(vocab_size, vocab_size)
    for (center, other), n in counts.items():
        c[center, other] = n
    return c


class NeighborModel(nn.Module):
    """中心のトークンの埋め込みから、周辺のトークンの分布を予測する。"""

    def __init__(self, vocab_size: int, d_model: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.out = nn.Linear(d_model, vocab_size, bias=False)

    def forward(self, ids: Tensor) -> Tensor:
        """(n,) の ID → (n, vocab_size) のロジット。"""
        logits: Tensor = self.out(self.embed(ids))
        return logits


def train_embeddings(
    text: str,
    d_model: int = 16,
    window: int = 1,
    steps: int = 500,
    seed: int = 0,
) -> tuple[WhitespaceTokenizer, NeighborModel]:
    """text から語彙を作り、埋め込みを学習する。"""
    tok = WhitespaceTokenizer()
    tok.train(text)
    lines = [tok.encode(line) for line in text.splitlines()]
    counts = cooccurrence(lines, tok.vocab_size, window)
    torch.manual_seed(seed)
    model = NeighborModel(tok.vocab_size, d_model)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    centers = torch.arange(tok.vocab_size)
    for _ in range(steps):
        log_p = F.log_softmax(model(centers), dim=-1)
        # すべての (中心, 周辺) の組についての交差エントロピーの平均。
        # 同じ組は何度出ても同じ項なので、回数で重みを付けて 1 度に計算する
        loss = -(counts * log_p).sum() / counts.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return tok, model


def nearest(
    tok: WhitespaceTokenizer, model: NeighborModel, word: str, k: int = 3
) -> list[str]:
    """word と埋め込みのコサイン類似度が高い順に k 個のトークンを返す。"""
    emb = F.normalize(model.embed.weight.detach(), dim=-1)
    sim = emb @ emb[tok.token_to_id[word]]
    # 特殊トークンはコーパスに現れず学習されないので、候補から外す
    sim[list(tok.special_tokens.values())] = -2.0
    sim[tok.token_to_id[word]] = -2.0
    return [tok.id_to_token[i] for i in sim.topk(k).indices.tolist()]
