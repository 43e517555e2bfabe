"""第18章: 事前学習の効果と、LoRA・頭だけ・全体の微調整の比較（CPU）。

1. ミニ言語のプログラム集（1 行 1 プログラム、ラベルなし）で小さな
   GPT を言語モデルとして事前学習する。
2. 分類の課題「プログラムをパーサが受理しないか」（半分は文字を 1 つ
   消し、パーサで正解を決める。正解は半々）を、ラベルの数を変えて
   全体の微調整で学習し、事前学習した重みから始めたときと乱数の
   初期値から始めたときのテストの正解率を比べる（種 0 の 1 回ずつ）。
3. ラベルの数を 1 つに決め、頭だけ・LoRA（r を 3 通り）・全体の微調整
   で、学習したパラメータの数と正解率を比べる（種 0 の 1 回ずつ）。

    .venv/bin/python benchmarks/bench_ch18_transfer.py

結果は `benchmarks/results/ch18_transfer.json` に書く。
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from _common import add_rebook_argument, environment, rebook, write_json

from easy_transformer._experiment import make_train_config
from easy_transformer.finetune import (
    GPTClassifier,
    accuracy,
    encode_examples,
    make_syntax_examples,
    train_classifier,
)
from easy_transformer.gpt import GPT
from easy_transformer.lm_experiment import (
    MiniLangLMConfig,
    _gpt_config,
    lm_loss,
    random_windows,
)
from easy_transformer.lora import add_lora, count_trainable
from easy_transformer.tasks import (
    make_program_splits,
    make_vocab,
    to_corpus,
)
from easy_transformer.training import Trainer, seed_everything

RESULTS = Path(__file__).resolve().parent / "results" / "ch18_transfer.json"
# 事前学習した重み（約 0.4 MB）。設定が同じなら、読み込んで学習を省く
PRETRAINED = RESULTS.with_name("ch18_pretrained.pt")

PRETRAIN = MiniLangLMConfig(
    block_size=64,
    n_layers=2,
    n_heads=4,
    d_model=64,
    batch_size=32,
    max_steps=800,
    lr=2e-3,
    min_lr=2e-4,
    eval_interval=200,
    n_programs=20_000,
    n_valid_programs=500,
    max_program_len=48,
)
LABEL_COUNTS = (32, 128, 512, 2048)
SEEDS = (0,)
COMPARE_LABELS = 512
LORA_RANKS = (1, 4, 16)
LORA_ALPHA = 8.0
FT_STEPS = 150
FT_BATCH = 32
FT_LR = 1e-3
N_TEST = 1000


def pretrain(seed: int) -> tuple[GPT, Any, dict[str, Any]]:
    cfg = PRETRAIN
    progs = make_program_splits(
        seed=seed,
        n_train=cfg.n_programs,
        n_valid=cfg.n_valid_programs,
        max_len=cfg.max_program_len,
    )
    train_text, val_text = to_corpus(progs.train), to_corpus(progs.valid)
    vocab = make_vocab([train_text, val_text])
    seed_everything(seed)
    model = GPT(_gpt_config(cfg, vocab.vocab_size))
    if PRETRAINED.exists():
        saved = torch.load(PRETRAINED, weights_only=True)
        if saved["config"] == repr(cfg) and saved["seed"] == seed:
            model.load_state_dict(saved["state"])
            return model, vocab, saved["info"]
    tc = make_train_config(
        cfg,
        betas=(0.9, cfg.beta2),
        grad_clip=cfg.grad_clip,
        seed=seed,
        device="cpu",
        progress=False,
        out_dir=None,
        resume=False,
    )
    t0 = time.perf_counter()
    trainer = Trainer(
        model,
        tc,
        random_windows(
            torch.tensor(vocab.encode(train_text)),
            cfg.block_size,
            cfg.batch_size,
        ),
        lm_loss,
        val_data=random_windows(
            torch.tensor(vocab.encode(val_text)),
            cfg.block_size,
            cfg.batch_size,
        ),
    )
    history = trainer.train()
    info = {
        "seconds": time.perf_counter() - t0,
        "n_train_chars": len(train_text),
        "val_loss": [r["val_loss"] for r in history if "val_loss" in r][-1],
        "n_params": sum(p.numel() for p in model.parameters()),
    }
    torch.save(
        {
            "config": repr(cfg),
            "seed": seed,
            "state": model.state_dict(),
            "info": info,
        },
        PRETRAINED,
    )
    return model, vocab, info


def finetune(
    state: dict[str, torch.Tensor] | None,
    vocab: Any,
    train: Any,
    test: Any,
    mode: str,
    seed: int,
    r: int = 0,
) -> dict[str, Any]:
    """mode は full・head・lora。state が None なら乱数の初期値から。"""
    seed_everything(seed)
    gpt = GPT(_gpt_config(PRETRAIN, vocab.vocab_size))
    if state is not None:
        gpt.load_state_dict(state)
    if mode == "head":
        gpt.requires_grad_(False)
    elif mode == "lora":
        add_lora(gpt, r=r, alpha=LORA_ALPHA)
    model = GPTClassifier(gpt, 2)
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=FT_LR,
        weight_decay=0.0,
    )
    t0 = time.perf_counter()
    losses = train_classifier(
        model, train, opt, steps=FT_STEPS, batch_size=FT_BATCH, seed=seed
    )
    return {
        "mode": mode,
        "r": r,
        "seed": seed,
        "pretrained": state is not None,
        "n_labels": len(train[0]),
        "trainable": count_trainable(model),
        "test_accuracy": accuracy(model, test),
        "final_loss": losses[-1],
        "seconds": time.perf_counter() - t0,
    }


def make_book(
    pre: dict[str, Any],
    curve: list[dict[str, Any]],
    compare: list[dict[str, Any]],
) -> dict[str, str]:
    """測った記録から、本文に載せる値（"book"）を作る。"""

    def mean_acc(recs: list[dict[str, Any]]) -> float:
        return statistics.mean(x["test_accuracy"] for x in recs)

    book: dict[str, str] = {
        "pretrain_steps": f"{PRETRAIN.max_steps:,}",
        "pretrain_chars": f"{pre['n_train_chars']:,}",
        "pretrain_params": f"{pre['n_params']:,}",
        "pretrain_val_loss": f"{pre['val_loss']:.2f}",
        "n_test": f"{N_TEST:,}",
        "ft_steps": f"{FT_STEPS}",
        "compare_labels": f"{COMPARE_LABELS}",
    }
    for n in LABEL_COUNTS:
        for pretrained, key in ((True, "pre"), (False, "scratch")):
            recs = [
                x
                for x in curve
                if x["n_labels"] == n and x["pretrained"] is pretrained
            ]
            book[f"acc_{key}_{n}"] = f"{100 * mean_acc(recs):.1f}%"
    full = next(x for x in compare if x["mode"] == "full")["trainable"]
    for rec in compare:
        name = f"{rec['mode']}{rec['r'] if rec['r'] else ''}"
        book[f"acc_{name}"] = f"{100 * rec['test_accuracy']:.1f}%"
        book[f"params_{name}"] = f"{rec['trainable']:,}"
        book[f"ratio_{name}"] = f"{100 * rec['trainable'] / full:.1f}%"
    return book


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    add_rebook_argument(parser)
    args = parser.parse_args()
    if args.rebook:
        rebook(
            RESULTS,
            lambda r: make_book(r["pretrain"], r["curve"], r["compare"]),
        )
        return
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    model, vocab, pre = pretrain(seed=0)
    print("事前学習", pre, flush=True)
    state = {k: v.clone() for k, v in model.state_dict().items()}

    # 分類の例は事前学習と別の種で作ったプログラムから
    progs = make_program_splits(
        seed=100,
        n_train=10_000,
        n_valid=0,
        max_len=PRETRAIN.max_program_len,
    ).train
    pool = make_syntax_examples(progs, max(LABEL_COUNTS) + N_TEST, seed=0)
    test = encode_examples(pool[:N_TEST], vocab)
    train_pool = pool[N_TEST:]

    curve = []
    for n in LABEL_COUNTS:
        for seed in SEEDS:
            train = encode_examples(train_pool[:n], vocab)
            for init in (state, None):
                rec = finetune(init, vocab, train, test, "full", seed)
                print(rec, flush=True)
                curve.append(rec)

    compare = []
    train = encode_examples(train_pool[:COMPARE_LABELS], vocab)
    runs: list[tuple[str, int]] = [("head", 0)]
    runs += [("lora", r) for r in LORA_RANKS]
    runs += [("full", 0)]
    for mode, r in runs:
        if mode == "full":  # ラベルの数の曲線で測ったもの（種 0）を使う
            rec = next(
                x
                for x in curve
                if x["n_labels"] == COMPARE_LABELS
                and x["pretrained"]
                and x["seed"] == 0
            )
        else:
            rec = finetune(state, vocab, train, test, mode, 0, r)
        print(rec, flush=True)
        compare.append(rec)

    book = make_book(pre, curve, compare)

    write_json(
        RESULTS,
        {
            "description": "ミニ言語で事前学習した GPT を、パーサが受理"
            "しないかの分類にファインチューニングした正解率",
            "config": {
                "pretrain": vars(PRETRAIN),
                "label_counts": LABEL_COUNTS,
                "seeds": SEEDS,
                "compare_labels": COMPARE_LABELS,
                "lora_ranks": LORA_RANKS,
                "lora_alpha": LORA_ALPHA,
                "ft_steps": FT_STEPS,
                "ft_batch": FT_BATCH,
                "ft_lr": FT_LR,
                "n_test": N_TEST,
                "threads": args.threads,
            },
            "pretrain": pre,
            "curve": curve,
            "compare": compare,
            "book": book,
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "environment": environment(),
        },
    )
    print(book)


if __name__ == "__main__":
    main()
