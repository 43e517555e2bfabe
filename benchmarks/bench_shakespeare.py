"""tinyshakespeare で文字単位の GPT を CPU で学習し、検証損失を測る。

nanoGPT の shakespeare_char を CPU で試す例（4 層・4 ヘッド・128 次元・
ブロック長 64・バッチ 12・2000 反復・dropout 0・バイアスなし）と同じ
大きさと学習の設定（lm_experiment.TEXT_LM_CONFIG）で学習する。学習率は
1e-3 から 1e-4 へのコサイン減衰（ウォームアップ 100）、AdamW の beta2 は
0.99、勾配のクリップは 1.0、重み減衰は 0.1。データの末尾 10% を検証に
使い、検証損失は 20 バッチの平均（nanoGPT の CPU の例の eval_iters=20
と同じ）。公開されている nanoGPT の結果は約 1.88。

大きさ・ステップ数・バッチ・ブロック長・学習率の予定・評価の仕方は
変えずに、次の「作り方」（Recipe）だけを切り替えて比べられる。

- special_tokens: 語彙に <pad>・<unk>・<bos>・<eos> の 4 つを入れる
  （パッケージの CharTokenizer の既定。nanoGPT は 65 文字だけ）。
- decay_embeddings: 埋め込み（出力層と共有）と位置埋め込みにも重み
  減衰をかける（nanoGPT は 2 次元以上のパラメータすべてにかける。
  パッケージの param_groups は埋め込みを除く）。
- exact_gelu: FFN の活性化を厳密な GELU にする（パッケージは GPT-2 と
  同じ tanh の近似。nanoGPT は厳密な GELU）。
- zero_init_proj: 残差に足し込む射影（注意の out_proj と FFN の fc2）
  の初期値を 0 にする（パッケージと nanoGPT は標準偏差
  0.02/√(2 × 層数) の正規分布）。
- position: 位置の表し方。"learned"（GPT-2 と nanoGPT の学習する位置
  埋め込み）か "rope"（第17章。パラメータを持たない）。
- beta2: AdamW の β2 を変える（None なら nanoGPT と同じ 0.99 のまま）。

本書で採る作り方（final）は、パッケージの既定から位置の表し方だけを
RoPE に替えたもの。nanoGPT と同じ作り方（nanogpt_gelu）と比べて何が
効いたかは、付録「ベンチマークの結果」に書く。

種ごとの検証損失に加え、検証データ全体（重ならない窓をすべて）での
損失も記録する（20 バッチの見積もりがどれだけ揺れるかを見るため）。
`--speed-check` を付けると、同じ実行の中でパッケージの既定の作り方と
交互に学習を進め、回ごとの CPU 時間の比（速さが落ちていないか）を測る。
`--speed-only` は学習せず、速さの比だけを `--speed-rounds` 回（既定 30）
測り直して、記録の speed_check と "book" を置き換える（回数を増やして
比の見積もりを確かにするため）。`--rebook` は学習せず、記録から本文に
入れる文字列（"book"）だけを作り直す。

    .venv/bin/python benchmarks/bench_shakespeare.py [--recipe final]
        [--seeds 0 1 2] [--jobs 3] [--speed-check] [--rebook]
    .venv/bin/python benchmarks/bench_shakespeare.py --speed-only \
        [--speed-rounds 30]

データが無い（または中身が記録と違う）ときは、終了コード 1 で終わる。
結果は `benchmarks/results/shakespeare.json`（`--recipe final`）か
`benchmarks/results/shakespeare_<作り方>.json` に書く。
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _common import (
    RESULTS,
    add_rebook_argument,
    add_threads_argument,
    alternate,
    describe_ratio,
    environment,
    rebook,
    set_threads,
    write_json,
)
from torch import Tensor, nn

from easy_transformer.data import DataError, data_path
from easy_transformer.gpt import GPT, GPTConfig
from easy_transformer.layers import FeedForward
from easy_transformer.lm_experiment import (
    TEXT_LM_CONFIG,
    LMConfig,
    lm_loss,
    random_windows,
)
from easy_transformer.tokenizer import CharTokenizer
from easy_transformer.training import (
    TrainConfig,
    Trainer,
    make_scheduler,
    param_groups,
    seed_everything,
)

DATA = "tinyshakespeare/input.txt"
REFERENCE_VAL_LOSS = 1.88  # nanoGPT の README にある CPU の例の結果


@dataclass(frozen=True)
class Recipe:
    """大きさと学習の予定を変えずに切り替える「作り方」。"""

    special_tokens: bool = True
    decay_embeddings: bool = False
    zero_init_proj: bool = False
    exact_gelu: bool = False
    position: str = "learned"  # "rope" で位置を RoPE に（学習する表が無い）
    beta2: float | None = None  # None は nanoGPT と同じ値のまま


RECIPES = {
    # パッケージの既定（変更前の計測と同じ）
    "package": Recipe(),
    # nanoGPT と同じ語彙と重み減衰
    "nanogpt": Recipe(special_tokens=False, decay_embeddings=True),
    "no_special_tokens": Recipe(special_tokens=False),
    "decay_embeddings": Recipe(decay_embeddings=True),
    "zero_init_proj": Recipe(zero_init_proj=True),
    "exact_gelu": Recipe(exact_gelu=True),
    # nanoGPT の model.py と同じ: 65 文字の語彙、埋め込みにも重み減衰、
    # 厳密な GELU
    "nanogpt_gelu": Recipe(
        special_tokens=False, decay_embeddings=True, exact_gelu=True
    ),
    # 本書で採る作り方: パッケージの既定のまま、位置の表し方だけを
    # 学習する位置埋め込み（GPT-2）から RoPE（第17章）に替える
    "final": Recipe(position="rope"),
    # 種 0 で試して、既定より良くならなかった作り方
    "beta2_095": Recipe(beta2=0.95),
}


def load_text() -> str:
    try:
        return data_path(DATA).read_text(encoding="utf-8")
    except DataError as exc:
        print(f"データを読めません: {exc}", file=sys.stderr)
        sys.exit(1)


def encode(text: str, recipe: Recipe) -> tuple[CharTokenizer, Tensor]:
    """文字単位の語彙を作り、テキスト全体を ID の列にする。"""
    if recipe.special_tokens:
        tok = CharTokenizer()
        tok.train(text)
    else:
        # nanoGPT と同じ: テキストに出てくる文字だけを、コードポイント順に
        tok = CharTokenizer.from_chars(text, special_tokens=())
    return tok, torch.tensor(tok.encode(text))


def build(
    recipe: Recipe, cfg: LMConfig, seed: int, text: str
) -> tuple[Trainer, Tensor, int]:
    """(Trainer, 検証の ID 列, 語彙の大きさ) を作る。"""
    tok, ids = encode(text, recipe)
    n_train = int(len(ids) * (1 - cfg.val_fraction))
    seed_everything(seed)
    model = GPT(
        GPTConfig(
            vocab_size=tok.vocab_size,
            block_size=cfg.block_size,
            n_layers=cfg.n_layers,
            n_heads=cfg.n_heads,
            d_model=cfg.d_model,
            dropout=cfg.dropout,
            bias=cfg.bias,
            position=recipe.position,
        )
    )
    if recipe.exact_gelu:
        # nanoGPT の MLP は nn.GELU()（tanh の近似ではない）
        for m in model.modules():
            if isinstance(m, FeedForward):
                m.activation = F.gelu
    if recipe.zero_init_proj:
        for name, p in model.named_parameters():
            if name.endswith(("out_proj.weight", "fc2.weight")):
                nn.init.zeros_(p)
    config = TrainConfig(
        lr=cfg.lr,
        min_lr=cfg.min_lr,
        weight_decay=cfg.weight_decay,
        betas=(0.9, cfg.beta2 if recipe.beta2 is None else recipe.beta2),
        warmup_steps=cfg.warmup_steps,
        max_steps=cfg.max_steps,
        grad_clip=cfg.grad_clip,
        eval_interval=cfg.eval_interval,
        eval_batches=cfg.eval_batches,
        log_interval=10,
        checkpoint_path=None,
        seed=seed,
        device="cpu",
        progress=False,
    )
    val_ids = ids[n_train:]
    trainer = Trainer(
        model,
        config,
        random_windows(ids[:n_train], cfg.block_size, cfg.batch_size),
        lm_loss,
        val_data=random_windows(val_ids, cfg.block_size, cfg.batch_size),
    )
    if recipe.decay_embeddings:
        decay_all_matrices(trainer, config)
    return trainer, val_ids, tok.vocab_size


def decay_all_matrices(trainer: Trainer, config: TrainConfig) -> None:
    """nanoGPT と同じく、2 次元以上のパラメータすべてに重み減衰をかける
    オプティマイザ（と学習率の予定）に替える（埋め込みにもかかる）。"""
    model = trainer.model
    groups = [
        {
            "params": [p for p in model.parameters() if p.dim() >= 2],
            "weight_decay": config.weight_decay,
        },
        {
            "params": [p for p in model.parameters() if p.dim() < 2],
            "weight_decay": 0.0,
        },
    ]
    assert sum(len(g["params"]) for g in groups) == len(
        [p for g in param_groups(model, 0.0) for p in g["params"]]
    )
    trainer.optimizer = torch.optim.AdamW(
        groups, lr=config.lr, betas=config.betas
    )
    trainer.scheduler = make_scheduler(trainer.optimizer, config)


@torch.no_grad()
def full_val_loss(model: nn.Module, val_ids: Tensor, block: int) -> float:
    """検証データ全体を重ならない窓に切った、全トークンの平均の損失。"""
    model.eval()
    n = (len(val_ids) - 1) // block
    x = val_ids[: n * block].view(n, block)
    y = val_ids[1 : n * block + 1].view(n, block)
    total = 0.0
    for i in range(0, n, 64):
        logits = model(x[i : i + 64])
        total += F.cross_entropy(
            logits.flatten(0, 1), y[i : i + 64].flatten(), reduction="sum"
        ).item()
    return total / (n * block)


# 動作確認用（--smoke）: ステップ数だけを減らす。結果は書かない
SMOKE_CONFIG = replace(
    TEXT_LM_CONFIG, max_steps=20, warmup_steps=5, eval_interval=10
)


def train_one(recipe_name: str, seed: int, smoke: bool) -> dict[str, Any]:
    """1 つの種で学習し、記録を返す（別のプロセスでも呼べる形）。"""
    set_threads(1)
    recipe = RECIPES[recipe_name]
    cfg = SMOKE_CONFIG if smoke else TEXT_LM_CONFIG
    trainer, val_ids, vocab_size = build(recipe, cfg, seed, load_text())
    wall, cpu = time.perf_counter(), time.process_time()
    history = trainer.train()
    seconds = time.perf_counter() - wall
    cpu_seconds = time.process_time() - cpu
    vals = [r["val_loss"] for r in history if "val_loss" in r]
    speeds = [r["tokens_per_sec"] for r in history if "tokens_per_sec" in r]
    return {
        "seed": seed,
        "val_loss": vals[-1],
        "val_loss_full": full_val_loss(
            trainer.model, val_ids, cfg.block_size
        ),
        "val_loss_curve": vals,
        "vocab_size": vocab_size,
        "steps": trainer.step,
        "train_seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "tokens_per_sec_mean": sum(speeds) / len(speeds),
    }


def speed_check(
    recipe_name: str, rounds: int, steps: int = 20
) -> dict[str, Any]:
    """パッケージの既定の作り方と交互に学習を進め、CPU 時間の比を測る。"""
    text = load_text()
    cfg = TEXT_LM_CONFIG
    trainers = {
        name: build(RECIPES[name], cfg, 0, text)[0]
        for name in ["package", recipe_name]
    }

    def run(trainer: Trainer) -> Any:
        def go() -> None:
            for _ in range(steps):
                trainer.train_step()

        return go

    timings = alternate(
        {f"{n}:{i}": run(t) for i, (n, t) in enumerate(trainers.items())},
        rounds,
    )
    a, b = timings.names
    return {
        "steps_per_round": steps,
        "time_ratio_package_over_recipe": timings.ratio(a, b),
        "timings": timings.to_dict(),
    }


def make_book(result: dict[str, Any]) -> dict[str, str]:
    """本文に載せる文字列（{{shakespeare_…}} の置換）を記録から作る。"""
    runs = result["runs"]
    seconds = [r["train_seconds"] for r in runs]
    book = {
        "val_loss_mean": f"{result['val_loss_mean']:.3f}",
        "val_losses": "・".join(f"{r['val_loss']:.3f}" for r in runs),
        "seeds": "・".join(str(r["seed"]) for r in runs),
        "train_seconds": f"{statistics.median(seconds):.0f} 秒",
        "val_loss_full_mean": f"{result['val_loss_full_mean']:.3f}",
    }
    if "speed_check" in result:
        r = result["speed_check"]["time_ratio_package_over_recipe"]
        book["speed_ratio"] = describe_ratio(r)
        book["speed_rounds"] = str(r["rounds"])
        book["speed_steps"] = str(result["speed_check"]["steps_per_round"])
        package = result_path("package")
        if result["recipe_name"] != "package" and package.exists():
            book |= catch_up(result, json.loads(package.read_text("utf-8")))
    return book


def catch_up(
    result: dict[str, Any], package: dict[str, Any]
) -> dict[str, str]:
    """既定の作り方の最後の検証損失（種の平均）に、この作り方が何ステップ
    目の評価で届くかと、1 ステップの時間の比を入れたときの時間の割合。"""
    target = package["val_loss_mean"]
    curves = [r["val_loss_curve"] for r in result["runs"]]
    interval = result["config"]["eval_interval"]
    steps = next(
        (
            (i + 1) * interval
            for i, losses in enumerate(zip(*curves, strict=True))
            if statistics.mean(losses) <= target
        ),
        None,
    )
    if steps is None:
        return {}
    ratio = result["speed_check"]["time_ratio_package_over_recipe"][
        "median"
    ]
    max_steps = result["config"]["max_steps"]
    return {
        "catch_up_steps": f"{steps:,}",
        "catch_up_time": f"{steps / max_steps / ratio:.0%}",
    }


def result_path(recipe: str, tag: str = "") -> Path:
    """作り方ごとの記録のファイル（final は shakespeare.json）。"""
    name = "shakespeare"
    if recipe != "final":
        name += f"_{recipe}"
    if tag:
        name += f"_{tag}"
    return RESULTS / f"{name}.json"


def respeed(path: Path, rounds: int) -> None:
    """記録の速さの比だけを rounds 回で測り直し、"book" も作り直す。"""
    result = json.loads(path.read_text(encoding="utf-8"))
    check = speed_check(result["recipe_name"], rounds)
    check["environment"] = environment()  # 学習とは別の時に測った
    result["speed_check"] = check
    result["book"] = make_book(result)
    write_json(path, result)
    r = check["time_ratio_package_over_recipe"]
    print(
        f"速さの比（既定 / {result['recipe_name']}）: {describe_ratio(r)}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=list(RECIPES), default="final")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--jobs", type=int, default=1, help="並べて学習する種の数"
    )
    parser.add_argument("--speed-check", action="store_true")
    parser.add_argument(
        "--speed-only",
        action="store_true",
        help="学習せず、記録の速さの比だけを測り直す",
    )
    parser.add_argument(
        "--speed-rounds",
        type=int,
        default=None,
        help="速さの比を測る回数（既定: --speed-check は 5、--speed-only は 30）",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="20 ステップだけの動作確認"
    )
    parser.add_argument(
        "--tag",
        default="",
        help="結果のファイル名に足す印（同じ作り方の種を分けて走らせるとき）",
    )
    add_threads_argument(parser)
    add_rebook_argument(parser)
    return parser.parse_args()


def train_all(args: argparse.Namespace) -> dict[str, Any]:
    """種ごとに学習し（--jobs なら並べて）、記録を作る。"""
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            runs = list(
                pool.map(
                    train_one,
                    [args.recipe] * len(args.seeds),
                    args.seeds,
                    [args.smoke] * len(args.seeds),
                )
            )
    else:
        runs = [train_one(args.recipe, s, args.smoke) for s in args.seeds]
    result: dict[str, Any] = {
        "description": "tinyshakespeare の文字単位 GPT（nanoGPT の "
        "shakespeare_char の CPU の例と同じ大きさと学習の予定）",
        "recipe_name": args.recipe,
        "recipe": asdict(RECIPES[args.recipe]),
        "config": asdict(TEXT_LM_CONFIG),
        "runs": runs,
        "val_loss_mean": statistics.mean(r["val_loss"] for r in runs),
        "val_loss_full_mean": statistics.mean(
            r["val_loss_full"] for r in runs
        ),
        "reference_val_loss": REFERENCE_VAL_LOSS,
        "jobs": args.jobs,
        "environment": environment(),
    }
    if args.speed_check:
        rounds = args.speed_rounds or (2 if args.smoke else 5)
        result["speed_check"] = speed_check(args.recipe, rounds)
    result["book"] = make_book(result)
    return result


def main() -> None:
    args = parse_args()
    path = result_path(args.recipe, args.tag)
    if args.rebook:
        rebook(path, make_book)
        return
    if args.threads != 1:
        raise SystemExit("この計測は 1 スレッド（--threads 1）で行います。")
    set_threads(args.threads)
    load_text()  # データが無ければここで終了コード 1
    if args.speed_only:
        respeed(path, args.speed_rounds or 30)
        return
    result = train_all(args)
    if not args.smoke:
        write_json(path, result)
    print(
        f"{args.recipe}: 検証損失 {result['book']['val_losses']}"
        f"（平均 {result['val_loss_mean']:.4f}、参考 {REFERENCE_VAL_LOSS}）"
    )
    if args.speed_check:
        r = result["speed_check"]["time_ratio_package_over_recipe"]
        print(
            "速さの比（既定の作り方の時間 / この作り方の時間）: "
            f"{describe_ratio(r)}"
        )


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
