"""ベンチマークのスクリプトに共通の部品。

- スレッド数をそろえる（torch と、tokenizers が使う Rust の rayon）。
- 2 つ以上の実装を同じ実行の中で交互に測り、回ごとの比の中央値と
  範囲（最小〜最大）を出す。
- 時間を測る前に、比べる実装の出力が一致することを確かめる。
- 計測環境（コミット、作業ツリーの変更の有無を含む）を記録し、結果を
  JSON で保存する。

時間はほかのプロセスとの取り合いで大きく揺れるので、絶対時間ではなく、
同じ回の中で測った時間の比を見る。CPU 時間には `time.process_time()`
（プロセスの全スレッドの合計）を使う。スレッドを 2 本以上にしても
ほかのスレッドの時間が抜け落ちない。
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


# ---------------------------------------------------------------------
# スレッド数と計測環境
# ---------------------------------------------------------------------


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """`--threads`（既定 1）を足す。"""
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch と Rust（RAYON_NUM_THREADS）のスレッド数（既定 1）",
    )


def set_threads(n: int) -> None:
    """torch と Rust の rayon（tokenizers の並列処理）のスレッド数をそろえる。

    rayon はスレッドの集まりを最初に並列処理をするときに作り、その時点の
    環境変数 RAYON_NUM_THREADS を読む。だから tokenizers で何かを処理
    する前に呼ぶ。
    """
    if n < 1:
        raise SystemExit(
            f"--threads={n} は使えません。1 以上にしてください。"
        )
    os.environ["RAYON_NUM_THREADS"] = str(n)
    torch.set_num_threads(n)


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return out.stdout.rstrip()


def environment() -> dict[str, Any]:
    """結果の JSON に残す計測環境。

    コミットと、計測に効くファイル（`easy_transformer/`・`benchmarks/`・
    `listings/` の .py）にコミットしていない変更があったかを残す。
    変更があれば、その結果はそのコミットだけからは再現できない。
    """
    changed = [
        line[3:]
        for line in _git(
            "status",
            "--porcelain",
            "--",
            "easy_transformer",
            "benchmarks",
            "listings",
        ).splitlines()
        if line.endswith(".py")
    ]
    return {
        "threads": torch.get_num_threads(),
        "rayon_threads": os.environ.get("RAYON_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": _git("rev-parse", "HEAD") or None,
        "uncommitted_changes": changed,
        "dirty": bool(changed),
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    """結果を読める形（UTF-8、字下げ付き）の JSON で保存する。"""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    path.write_text(text + "\n", encoding="utf-8")


def add_rebook_argument(parser: argparse.ArgumentParser) -> None:
    """`--rebook`（学習せず、記録から "book" だけを作り直す）を足す。"""
    parser.add_argument(
        "--rebook",
        action="store_true",
        help='学習せず、保存した記録から "book" だけを作り直す',
    )


def rebook(
    path: Path, make_book: Callable[[dict[str, Any]], dict[str, str]]
) -> None:
    """保存した記録を読み、"book"（本文に入れる文字列）だけを作り直す。

    本文に載せる書き方（桁数や単位）を変えたときに、何分もかかる学習を
    やり直さずに済ませるためのもの。計測した値そのものは変えない。
    """
    record = json.loads(path.read_text(encoding="utf-8"))
    record["book"] = make_book(record)
    write_json(path, record)
    print(record["book"])


# ---------------------------------------------------------------------
# 交互に測る
# ---------------------------------------------------------------------


@dataclass
class Timings:
    """実装ごと・回ごとの時間（秒）。`cpu` と `wall` の 2 種類。"""

    names: list[str]
    cpu: dict[str, list[float]] = field(default_factory=dict)
    wall: dict[str, list[float]] = field(default_factory=dict)

    def ratio(
        self, num: str, den: str, kind: str = "cpu"
    ) -> dict[str, Any]:
        """回ごとの時間の比 num / den の中央値と範囲。

        同じ回の 2 つの時間は、ほぼ同じ混み具合の中で測ったものなので、
        回ごとに比をとってから中央値をとる（中央値どうしの比ではない）。
        """
        times = getattr(self, kind)
        per_round = [
            a / b for a, b in zip(times[num], times[den], strict=True)
        ]
        return {
            "median": statistics.median(per_round),
            "min": min(per_round),
            "max": max(per_round),
            "rounds": len(per_round),
            "per_round": per_round,
        }

    def median(self, name: str, kind: str = "cpu") -> float:
        """name の 1 回の時間の中央値（秒）。"""
        return statistics.median(getattr(self, kind)[name])

    def to_dict(self) -> dict[str, Any]:
        return {"cpu_seconds": self.cpu, "wall_seconds": self.wall}


def alternate(
    runs: Mapping[str, Callable[[], object]],
    rounds: int,
    warmup: int = 1,
) -> Timings:
    """runs の関数を 1 回ずつ交互に呼んで時間を測ることを rounds 回行う。

    回ごとに測る順番を逆にして、先か後かの有利不利を打ち消す。
    最初の warmup 回（メモリの確保などの準備を含む）は測らない。
    """
    names = list(runs)
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    t = Timings(names, {n: [] for n in names}, {n: [] for n in names})
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            cpu, wall = time.process_time(), time.perf_counter()
            runs[name]()
            t.cpu[name].append(time.process_time() - cpu)
            t.wall[name].append(time.perf_counter() - wall)
    return t


def describe_ratio(r: Mapping[str, Any], digits: int = 2) -> str:
    """比の中央値と範囲を「1.23 倍（1.10〜1.30）」の形にする。"""
    f = f"{{:.{digits}f}}"
    return (
        f"{f.format(r['median'])} 倍"
        f"（{f.format(r['min'])}〜{f.format(r['max'])}）"
    )


# ---------------------------------------------------------------------
# 出力が一致することを確かめる
# ---------------------------------------------------------------------


class MismatchError(AssertionError):
    """比べる実装の出力が一致しない（時間を比べる意味がない）。"""


def check_close(
    what: str,
    actual: Tensor,
    expected: Tensor,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> dict[str, Any]:
    """2 つの出力が許容誤差の中で一致することを確かめ、記録を返す。

    一致しなければ MismatchError。rtol と atol の意味は
    `torch.testing.assert_close` と同じ。
    """
    try:
        torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)
    except AssertionError as exc:
        raise MismatchError(f"{what}: 出力が一致しません\n{exc}") from exc
    diff = (actual.double() - expected.double()).abs().max().item()
    return {
        "what": what,
        "passed": True,
        "max_abs_diff": diff,
        "rtol": rtol,
        "atol": atol,
    }


def check_equal(
    what: str, actual: object, expected: object
) -> dict[str, Any]:
    """2 つの出力（トークン列など）が完全に同じことを確かめ、記録を返す。"""
    same = (
        torch.equal(actual, expected)
        if isinstance(actual, Tensor) and isinstance(expected, Tensor)
        else actual == expected
    )
    if not same:
        raise MismatchError(f"{what}: 出力が完全には一致しません")
    return {"what": what, "passed": True, "exact": True}


# ---------------------------------------------------------------------
# 比較の相手: nn.TransformerEncoder で組んだ GPT と、重みの写し方
# ---------------------------------------------------------------------


class TorchGPT(nn.Module):
    """nn.TransformerEncoder（因果マスク、Pre-LN）で組んだ GPT と同じ形。

    埋め込み・位置埋め込み・最後の LayerNorm・出力層（埋め込みと共有）
    は easy_transformer.gpt.GPT と同じ。活性化関数も GPT と同じ GELU の
    tanh 近似にする。`copy_gpt_weights` で GPT の重みを写すと、同じ
    ロジットを返す。
    """

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_layers: int,
        n_heads: int,
        d_model: int,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(block_size, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model,
            n_heads,
            4 * d_model,
            dropout=0.0,
            activation=lambda x: F.gelu(x, approximate="tanh"),
            batch_first=True,
            norm_first=True,
            bias=bias,
        )
        self.encoder = nn.TransformerEncoder(
            layer, n_layers, enable_nested_tensor=False
        )
        # Pre-LN では最後の層の出力が正規化を通らないので、ここで通す
        self.norm = nn.LayerNorm(d_model, bias=bias)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight
        self.register_buffer(
            "mask",
            nn.Transformer.generate_square_subsequent_mask(block_size),
        )

    def forward(self, ids: Tensor) -> Tensor:
        t = ids.size(1)
        pos = torch.arange(t, device=ids.device)
        x = self.tok_emb(ids) + self.pos_emb(pos)
        x = self.encoder(x, mask=self.mask[:t, :t], is_causal=True)
        logits: Tensor = self.lm_head(self.norm(x))
        return logits


def torch_gpt_like(model: nn.Module) -> TorchGPT:
    """easy_transformer の GPT と同じ大きさの TorchGPT を作る。"""
    c = model.config  # type: ignore[union-attr]
    return TorchGPT(
        c.vocab_size, c.block_size, c.n_layers, c.n_heads, c.d_model, c.bias
    )


@torch.no_grad()
def copy_gpt_weights(ours: nn.Module, ref: TorchGPT) -> None:
    """easy_transformer の GPT の重みを TorchGPT に写す（ref を書き換える）。

    nn.MultiheadAttention は W_Q・W_K・W_V を縦に積んだ in_proj_weight
    に持つので、3 つをつないで写す（第9章の load_from_torch の逆向き）。
    """
    ref.tok_emb.weight.copy_(ours.tok_emb.embed.weight)
    ref.pos_emb.weight.copy_(ours.pos_emb.embed.weight)
    for block, layer in zip(ours.blocks, ref.encoder.layers, strict=True):
        attn = block.self_attn
        projs = [attn.q_proj, attn.k_proj, attn.v_proj]
        layer.self_attn.in_proj_weight.copy_(
            torch.cat([p.weight for p in projs])
        )
        layer.self_attn.out_proj.weight.copy_(attn.out_proj.weight)
        layer.linear1.weight.copy_(block.ffn.fc1.weight)
        layer.linear2.weight.copy_(block.ffn.fc2.weight)
        layer.norm1.weight.copy_(block.self_attn_res.norm.weight)
        layer.norm2.weight.copy_(block.ffn_res.norm.weight)
        if layer.linear1.bias is not None:
            layer.self_attn.in_proj_bias.copy_(
                torch.cat([p.bias for p in projs])
            )
            layer.self_attn.out_proj.bias.copy_(attn.out_proj.bias)
            layer.linear1.bias.copy_(block.ffn.fc1.bias)
            layer.linear2.bias.copy_(block.ffn.fc2.bias)
            layer.norm1.bias.copy_(block.self_attn_res.norm.bias)
            layer.norm2.bias.copy_(block.ffn_res.norm.bias)
    ref.norm.weight.copy_(ours.norm.weight)
    if ref.norm.bias is not None:
        ref.norm.bias.copy_(ours.norm.bias)


def training_step(
    model: nn.Module, batches: Sequence[tuple[Tensor, Tensor]]
) -> Callable[[], float]:
    """batches で 1 回ずつ更新する関数を返す（AdamW、次トークン予測）。

    返す関数は最後の損失を返す。重みが同じ 2 つのモデルなら、同じ
    batches で同じ損失の列になる（速さの比較が同じ計算の比較である
    ことを確かめるのに使う）。
    """
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99))
    model.train()

    def run() -> float:
        loss = torch.zeros(())
        for x, y in batches:
            logits = model(x)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
        return loss.item()

    return run
