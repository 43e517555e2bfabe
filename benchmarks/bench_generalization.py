"""rpn の課題で「学習より深い式への汎化」を調べる実験（第16章）。

基準（seq2seq_experiment.TASK_CONFIGS["rpn"]: 深さ 1〜3 の式で
3500 ステップ学習）に対して、手を 1 つずつ変えて学習し、同じ評価
セットで深さごとの完全一致率を比べる。

手（--variants で選ぶ）:

- ``baseline``: 基準そのもの（正弦波の位置エンコーディング、2 層）
- ``rope``: 位置の表し方を RoPE（相対位置）にする。埋め込みに位置を
  足すのをやめ、エンコーダとデコーダの自己注意のクエリとキーを
  RoPE で回す（クロス注意は別の列どうしなので回さない）
- ``mix4``: 学習データの 5% を深さ 4 の式に置き換える（深さの分布）
- ``stack``: 出力の各命令の後ろに、実行後のスタックの高さを書かせる
  （``x 2 - 3 *`` → ``x:1 2:2 -:1 3:2 *:1``。途中の計算を書かせる形式）。
  採点は高さの注記を取り除いてから行う
- ``layers4``: エンコーダとデコーダを 4 層ずつにする（モデルの深さ）

どの手も学習のステップ数・バッチの大きさ・学習率の予定は同じで、
学習・検証・テストのデータも同じ種から作る（mix4 と stack だけが
学習データを変える）。評価セットは、種によらない別の乱数で一度だけ
作る: 深さ 1〜3 のテスト（学習と重複しない 1000 個）と、深さ 4・5・6
の式（各 300 個、64 文字以下）。例ごとに正誤、最初に間違えた命令の
位置と種類、式の長さ・括弧の入れ子の深さを記録し、深さ別・長さ別・
括弧の深さ別に集計する。baseline では、貪欲法とビームサーチ
（ビーム幅 4）の完全一致率も比べる。

    nice -n 5 .venv/bin/python benchmarks/bench_generalization.py \\
        --variants baseline rope --seeds 0 1

結果は ``benchmarks/results/generalization.json`` の ``runs`` に
「手/種」の名前で追記・上書きする（ほかの手の結果は残す）。本文の
表は tools/generalization_table.py がこの JSON から作る。
"""

from __future__ import annotations

import argparse
import fcntl
import importlib
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from _common import environment, write_json
from torch import Tensor, nn

from easy_transformer._experiment import make_train_config
from easy_transformer.embedding import RotaryEmbedding
from easy_transformer.minilang import depth, parse_expr
from easy_transformer.model_io import load_model
from easy_transformer.seq2seq_experiment import (
    Seq2SeqConfig,
    _make_loaders,
    _transformer_config,
    decode_output,
    predict,
    seq2seq_loss,
)
from easy_transformer.tasks import (
    BOS_ID,
    EOS_ID,
    RPN_NAMES,
    Pair,
    Splits,
    make_splits,
    make_vocab,
    random_expr_source,
    solve_rpn,
)
from easy_transformer.tokenizer import CharTokenizer, Tokenizer
from easy_transformer.training import (
    Trainer,
    seed_everything,
)
from easy_transformer.transformer import Transformer

ROOT = Path(__file__).resolve().parent.parent
# 採点と失敗の分析は、本文に載せたリストの関数を使う
sys.path.append(str(ROOT))
metrics = importlib.import_module("listings.ch16.01_metrics")
failure = importlib.import_module("listings.ch16.02_failure")
constrained = importlib.import_module("listings.ch16.03_constrained")

RESULTS = ROOT / "benchmarks" / "results"
SUMMARY = RESULTS / "generalization.json"

BASE = Seq2SeqConfig(max_level=3, n_train=40_000, max_steps=3500)
EVAL_SEED = 20_261_201  # 評価セットの種（学習の種とは別）
EVAL_DEPTHS = (4, 5, 6)
N_EVAL_PER_DEPTH = 300
MIX_DEPTH = 4
MIX_FRACTION = 0.05
BEAM_SIZE = 4
N_BEAM = 100  # ビームサーチで比べる例の数（遅いので各セットの先頭だけ）

VARIANTS: dict[str, str] = {
    "baseline": "基準（正弦波の位置、2 層、深さ 1〜3 で学習）",
    "rope": "位置を RoPE（相対位置）にする",
    "mix4": "学習データの 5% を深さ 4 の式にする",
    "stack": "出力にスタックの高さを書かせる",
    "layers4": "エンコーダとデコーダを 4 層にする",
}


# ---------------------------------------------------------------------
# データ
# ---------------------------------------------------------------------


def draw_exprs(
    rng: random.Random, level: int, n: int, seen: set[str], max_len: int
) -> list[Pair]:
    """深さがちょうど level の式を、seen と重複しないように n 個作る。"""
    out: list[Pair] = []
    while len(out) < n:
        src = random_expr_source(rng, level, names=RPN_NAMES)
        tgt = solve_rpn(src)
        if src in seen or max(len(src), len(tgt)) > max_len:
            continue
        seen.add(src)
        out.append((src, tgt))
    return out


def eval_sets(max_len: int) -> dict[int, list[Pair]]:
    """深さ 4・5・6 の評価セット（学習の種によらず同じもの）。"""
    rng = random.Random(EVAL_SEED)
    seen: set[str] = set()
    return {
        d: draw_exprs(rng, d, N_EVAL_PER_DEPTH, seen, max_len)
        for d in EVAL_DEPTHS
    }


# ---------------------------------------------------------------------
# モデル
# ---------------------------------------------------------------------


class NoPosition(nn.Module):
    """位置を何も足さない（RoPE を注意の中で使うとき用）。"""

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        return x


def use_rope(model: Transformer, max_len: int) -> None:
    """埋め込みの位置を外し、自己注意のクエリとキーを RoPE で回す。"""
    c = model.config
    model.pos = NoPosition()
    head_dim = c.d_model // c.n_heads
    layers = [*model.encoder.layers, *model.decoder.layers]
    for layer in layers:
        layer.self_attn.rotary = RotaryEmbedding(head_dim, max_len)


# ---------------------------------------------------------------------
# 採点と失敗の分析
# ---------------------------------------------------------------------


def analyse(
    pairs: Sequence[Pair], preds: Sequence[str]
) -> list[dict[str, Any]]:
    rows = []
    for (src, tgt), pred in zip(pairs, preds, strict=True):
        pos, kind = failure.first_error(pred, tgt)
        rows.append(
            {
                "depth": depth(parse_expr(src)),
                "length": len(src),
                "paren": failure.paren_depth(src),
                "n_instr": len(tgt.split()),
                "correct": int(pred == tgt),
                "token_acc": round(metrics.token_accuracy(pred, tgt), 4),
                "err_pos": pos,
                "err_kind": kind,
                # 出力は正しい RPN の列か（スタックが崩れないか）
                "well_formed": int(failure.well_formed(pred)),
            }
        )
    return rows


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    by_depth: dict[str, list[int]] = {}
    tok: dict[str, list[float]] = {}
    for r in rows:
        by_depth.setdefault(str(r["depth"]), []).append(r["correct"])
        tok.setdefault(str(r["depth"]), []).append(r["token_acc"])
    return {
        "exact_match_by_depth": {
            d: sum(v) / len(v) for d, v in sorted(by_depth.items())
        },
        "token_accuracy_by_depth": {
            d: sum(v) / len(v) for d, v in sorted(tok.items())
        },
        "n_by_depth": {d: len(v) for d, v in sorted(by_depth.items())},
    }


# ---------------------------------------------------------------------
# 学習と評価
# ---------------------------------------------------------------------


def make_model(
    variant: str, cfg: Seq2SeqConfig, vocab_size: int
) -> Transformer:
    model = Transformer(_transformer_config(cfg, vocab_size))
    if variant == "rope":
        use_rope(model, 2 * cfg.max_len + 2)
    return model


def beam_predictions(
    model: Transformer,
    vocab: Tokenizer,
    sources: Sequence[str],
    max_new: int,
) -> list[str]:
    model.eval()
    out = []
    for s in sources:
        src = torch.tensor(vocab.encode(s), dtype=torch.long)
        ys = model.beam_search(
            src, BOS_ID, BEAM_SIZE, max_new, eos_id=EOS_ID
        )
        out.append(decode_output(vocab, ys.tolist()))
    return out


def variant_splits(
    variant: str,
    seed: int,
    cfg: Seq2SeqConfig,
    splits: Splits,
    deep: dict[int, list[Pair]],
) -> Splits:
    """手に合わせて学習と検証の組を変えた Splits。

    mix4 は学習データの一部を深さ 4 の式に、stack は出力をスタックの
    高さ付きの形にする。テストと汎化テストはそのまま。
    """
    train = list(splits.train)
    if variant == "mix4":
        # 評価セットと重複しない深さ 4 の式で、学習データの一部を置き換える
        seen = {s for pairs in deep.values() for s, _ in pairs}
        n_mix = int(MIX_FRACTION * len(train))
        extra = draw_exprs(
            random.Random(seed + 1000), MIX_DEPTH, n_mix, seen, cfg.max_len
        )
        train[-n_mix:] = extra
        random.Random(seed).shuffle(train)
    fmt = failure.with_stack_heights if variant == "stack" else str
    return replace(
        splits,
        train=[(s, fmt(t)) for s, t in train],
        valid=[(s, fmt(t)) for s, t in splits.valid],
    )


def make_trainer(
    model: Transformer,
    cfg: Seq2SeqConfig,
    seed: int,
    splits: Splits,
    vocab: CharTokenizer,
) -> Trainer:
    """基準（train_seq2seq）と同じデータの読み方と学習の設定の Trainer。

    途中の完全一致率の評価（eval_fn）は付けない。
    """
    loader, val_loader = _make_loaders(splits, vocab, cfg, seed)
    tc = make_train_config(
        cfg,
        betas=(0.9, 0.98),
        seed=seed,
        device="cpu",
        progress=False,
        out_dir=None,
    )
    return Trainer(model, tc, loader, seq2seq_loss, val_data=val_loader)


def train_and_record(
    trainer: Trainer, variant: str, seed: int, cfg: Seq2SeqConfig
) -> dict[str, Any]:
    """学習し、時間・ステップ数・パラメータ数・最後の検証損失を記録する。"""
    t0 = time.perf_counter()
    c0 = time.process_time()
    history = trainer.train()
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    return {
        "variant": variant,
        "description": VARIANTS[variant],
        "seed": seed,
        "config": asdict(cfg),
        "steps": trainer.step,
        "train_seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "n_params": sum(p.numel() for p in trainer.model.parameters()),
        "final_val_loss": next(
            (h["val_loss"] for h in reversed(history) if "val_loss" in h),
            None,
        ),
    }


def run(
    variant: str,
    seed: int,
    smoke: bool = False,
    from_model: Path | None = None,
) -> dict[str, Any]:
    """手を 1 つ、種を 1 つ学習して評価し、記録を返す。

    from_model を渡すと学習せず、bench_tasks.py が同じ設定・同じ種で
    学習して保存したモデル（rpn_model.pt）を読んで評価だけを行う
    （基準のときだけ使える）。
    """
    if from_model is not None and variant != "baseline":
        raise ValueError("--from-model は baseline にだけ使えます")
    cfg = replace(BASE, n_layers=4) if variant == "layers4" else BASE
    if smoke:  # 動作確認だけ（結果は意味を持たない）
        cfg = replace(cfg, n_train=400, n_valid=20, n_test=20, max_steps=5)
    splits = make_splits(
        "rpn",
        seed=seed,
        n_train=cfg.n_train,
        n_valid=cfg.n_valid,
        n_test=cfg.n_test,
        max_level=cfg.max_level,
        max_len=cfg.max_len,
    )
    deep = eval_sets(cfg.max_len)
    if smoke:
        deep = {d: pairs[:10] for d, pairs in deep.items()}
    splits = variant_splits(variant, seed, cfg, splits, deep)
    all_pairs = [
        *splits.train,
        *splits.valid,
        *splits.test,
        *(p for v in deep.values() for p in v),
    ]
    vocab = make_vocab([*(t for p in all_pairs for t in p), "0123456789: "])
    if from_model is not None:
        return evaluate_saved(from_model, seed, cfg, splits.test, deep)
    seed_everything(seed)
    model = make_model(variant, cfg, vocab.vocab_size)
    trainer = make_trainer(model, cfg, seed, splits, vocab)
    record = train_and_record(trainer, variant, seed, cfg)
    record.update(evaluate(model, vocab, variant, splits.test, deep))
    return record


def evaluate(
    model: Transformer,
    vocab: Tokenizer,
    variant: str,
    test: Sequence[Pair],
    deep: dict[int, list[Pair]],
) -> dict[str, Any]:
    """テストと深い式の評価セットで、例ごとの記録と集計を作る。"""

    def decode(pairs: Sequence[Pair]) -> list[str]:
        factor = 2 if variant == "stack" else 1
        max_new = factor * max(len(t) for _, t in pairs) + 4
        preds = predict(
            model, [s for s, _ in pairs], vocab, max_new_tokens=max_new
        )
        if variant == "stack":
            preds = [failure.strip_stack_heights(p) for p in preds]
        return preds

    rows = analyse(test, decode(test))
    for d in EVAL_DEPTHS:
        rows += analyse(deep[d], decode(deep[d]))
    out: dict[str, Any] = {**summarize(rows), "rows": rows}
    if variant == "baseline" and N_BEAM > 0:
        out["beam"] = compare_beam(model, vocab, test, deep)
        out["constrained"] = compare_constrained(model, vocab, test, deep)
    return out


def evaluate_saved(
    path: Path,
    seed: int,
    cfg: Seq2SeqConfig,
    test: Sequence[Pair],
    deep: dict[int, list[Pair]],
) -> dict[str, Any]:
    """保存した基準のモデルを評価する（学習の記録は tasks.json から）。"""
    loaded = load_model(path, device="cpu")
    model = loaded.model
    assert isinstance(model, Transformer)
    tasks = json.loads((RESULTS / "tasks.json").read_text("utf-8"))
    trained = tasks["tasks"]["rpn"]
    keys = ("max_level", "n_train", "max_steps", "d_model", "n_layers")
    same = all(trained["config"][k] == getattr(cfg, k) for k in keys)
    if trained["seed"] != seed or not same:
        raise ValueError(
            f"{path} は種 {seed}・基準の設定のモデルではありません"
        )
    record: dict[str, Any] = {
        "variant": "baseline",
        "description": VARIANTS["baseline"],
        "seed": seed,
        "config": asdict(cfg),
        "from_model": path.name,
        "steps": trained["steps"],
        "train_seconds": trained["train_seconds"],
        "cpu_seconds": trained["cpu_seconds"],
        "n_params": sum(p.numel() for p in model.parameters()),
        "final_val_loss": trained["val_loss"],
    }
    record.update(evaluate(model, loaded.codec, "baseline", test, deep))
    return record


def compare_beam(
    model: Transformer,
    vocab: Tokenizer,
    test: Sequence[Pair],
    deep: dict[int, list[Pair]],
) -> dict[str, Any]:
    """貪欲法とビームサーチの完全一致率を同じ例で比べる。"""
    sets = {"test": list(test[:N_BEAM])}
    sets.update({f"depth{d}": pairs[:N_BEAM] for d, pairs in deep.items()})
    out: dict[str, Any] = {"beam_size": BEAM_SIZE}
    for name, pairs in sets.items():
        max_new = max(len(t) for _, t in pairs) + 4
        sources = [s for s, _ in pairs]
        t0 = time.perf_counter()
        greedy = predict(model, sources, vocab, max_new_tokens=max_new)
        t1 = time.perf_counter()
        beam = beam_predictions(model, vocab, sources, max_new)
        t2 = time.perf_counter()
        g = [p == t for p, (_, t) in zip(greedy, pairs, strict=True)]
        b = [p == t for p, (_, t) in zip(beam, pairs, strict=True)]
        out[name] = {
            "n": len(pairs),
            "greedy": sum(g) / len(g),
            "beam": sum(b) / len(b),
            "beam_fixed": sum(
                bb and not gg for gg, bb in zip(g, b, strict=True)
            ),
            "beam_broke": sum(
                gg and not bb for gg, bb in zip(g, b, strict=True)
            ),
            "greedy_seconds": t1 - t0,
            "beam_seconds": t2 - t1,
        }
    return out


def merge(path: Path, key: str, record: dict[str, Any]) -> None:
    """path の runs[key] を record にする（ほかの項目は残す）。

    2 本の実行が同じファイルに書くことがあるので、ロックを取ってから
    読み直して書く。
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        summary: dict[str, Any] = {}
        if path.exists():
            summary = json.loads(path.read_text(encoding="utf-8"))
        summary.setdefault(
            "description", "rpn の課題で、学習より深い式への汎化"
        )
        summary.setdefault("runs", {})[key] = record
        write_json(path, summary)


def compare_constrained(
    model: Transformer,
    vocab: Tokenizer,
    test: Sequence[Pair],
    deep: dict[int, list[Pair]],
) -> dict[str, Any]:
    """貪欲法と、字句から決まる制約付きの貪欲法を同じ例で比べる。"""
    sets = {"test": list(test[:N_BEAM])}
    sets.update({f"depth{d}": pairs[:N_BEAM] for d, pairs in deep.items()})
    out: dict[str, Any] = {}
    for name, pairs in sets.items():
        max_new = max(len(t) for _, t in pairs) + 4
        sources = [s for s, _ in pairs]
        greedy = predict(model, sources, vocab, max_new_tokens=max_new)
        con = constrained.constrained_predict(
            model, sources, vocab, max_new_tokens=max_new
        )
        g = [p == t for p, (_, t) in zip(greedy, pairs, strict=True)]
        c = [p == t for p, (_, t) in zip(con, pairs, strict=True)]
        out[name] = {
            "n": len(pairs),
            "greedy": sum(g) / len(g),
            "constrained": sum(c) / len(c),
        }
    return out


def main() -> None:
    global N_BEAM
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--variants", nargs="+", default=["baseline"], choices=VARIANTS
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=SUMMARY)
    parser.add_argument(
        "--smoke", action="store_true", help="極小の設定で動作確認だけ"
    )
    parser.add_argument(
        "--n-compare",
        type=int,
        default=N_BEAM,
        help="ビームサーチと制約付きの貪欲法で比べる、各セットの例の数",
    )
    parser.add_argument(
        "--from-model",
        type=Path,
        help="baseline を学習せず、bench_tasks.py が保存したモデル"
        "（benchmarks/results/rpn_model.pt）を評価する",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    N_BEAM = args.n_compare
    for variant in args.variants:
        for seed in args.seeds:
            t0 = time.perf_counter()
            load_before = os.getloadavg()
            record = run(
                variant, seed, smoke=args.smoke, from_model=args.from_model
            )
            record["load_average_before"] = load_before
            record["load_average_after"] = os.getloadavg()
            record["environment"] = environment()
            merge(args.out, f"{variant}/{seed}", record)
            em = record["exact_match_by_depth"]
            print(
                f"{variant}/{seed}: 学習 {record['train_seconds']:.0f} 秒、"
                + "、".join(f"深さ {d} {v:.3f}" for d, v in em.items())
                + f"（全体 {time.perf_counter() - t0:.0f} 秒）",
                flush=True,
            )


if __name__ == "__main__":
    main()
