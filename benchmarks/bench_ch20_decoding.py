"""第20章: 同じモデル・同じプロンプトで、生成の作り方を比べる（CPU）。

tinyshakespeare の文字単位の GPT（lm_experiment.TEXT_LM_CONFIG、
4 層・128 次元・2000 ステップ）を 1 スレッドで学習して
`benchmarks/results/ch20_char_gpt.pt` に保存し（あれば読み込む）、
次の 4 つを測る。

1. サンプリング: 貪欲法、温度 0.5・1.0・1.5、top-k、top-p、繰り返し
   ペナルティを、同じプロンプトから 32 本ずつ 200 文字生成する。
   各ステップで実際に引いた分布のエントロピー（ビット）と、確率が 0 で
   ない候補の数を平均し、生成した文章の「学習データにある単語の割合」と
   「8 文字の並びの重複の割合」を数える。本に載せる生成例は
   generate_text（読者が呼ぶのと同じ関数）で作る。
2. ビームサーチ: 貪欲法とビーム幅 4 で、ブロック長に収まるだけ生成し、
   1 文字あたりの対数確率と重複の割合を比べる。
3. 長さの制御: 停止列（空行）と eos（改行を終わりとみなす）で止める。
4. 量子化: 線形層を int8 にしたモデルと float32 のモデルの、大きさ・
   検証データでの logits の差・次の文字の一致率・損失・貪欲法の
   生成の一致率。

    .venv/bin/python benchmarks/bench_ch20_decoding.py [--retrain]

結果は `benchmarks/results/ch20_decoding.json` に書く。
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F
from _common import (
    RESULTS,
    add_threads_argument,
    environment,
    set_threads,
    write_json,
)
from torch import Tensor

from easy_transformer.data import data_path
from easy_transformer.generation import (
    apply_repetition_penalty,
    top_k_filter,
    top_p_filter,
)
from easy_transformer.gpt import GPT
from easy_transformer.lm_experiment import (
    TEXT_LM_CONFIG,
    SamplingConfig,
    generate_text,
    train_text_lm,
)
from easy_transformer.model_io import load_model, save_model
from easy_transformer.quantization import (
    model_size_bytes,
    output_error,
    quantize_linear_layers,
)
from easy_transformer.tokenizer import Tokenizer

OUT = RESULTS / "ch20_decoding.json"
MODEL = RESULTS / "ch20_char_gpt.pt"
PROMPT = "ROMEO:\n"
N_SAMPLES = 32
NEW_TOKENS = 200

# (名前, generate の引数)。同じ順で本の表に並べる
SETTINGS: list[tuple[str, dict[str, Any]]] = [
    ("greedy", {"do_sample": False}),
    ("t05", {"temperature": 0.5}),
    ("t10", {"temperature": 1.0}),
    ("t15", {"temperature": 1.5}),
    ("topk5", {"top_k": 5}),
    ("topp09", {"top_p": 0.9}),
    ("rep13", {"do_sample": False, "repetition_penalty": 1.3}),
]


def get_model(retrain: bool) -> tuple[GPT, Tokenizer, dict[str, Any]]:
    """学習済みのモデルを読む。無いか retrain なら学習して保存する。"""
    if MODEL.exists() and not retrain:
        loaded = load_model(MODEL)
        assert isinstance(loaded.model, GPT)
        return loaded.model, loaded.codec, loaded.meta
    result = train_text_lm(
        data_path("tinyshakespeare/input.txt"),
        config=TEXT_LM_CONFIG,
        seed=0,
        progress=False,
        sampling=SamplingConfig(max_new_tokens=0),
    )
    meta = {
        "val_loss": result.val_loss,
        "steps": result.steps,
        "n_params": result.n_params,
        "cpu_seconds": result.cpu_seconds,
        "config": asdict(result.config),
    }
    save_model(MODEL, result.model, result.codec, meta=meta)
    return result.model.eval(), result.codec, meta


def processed_logits(
    logits: Tensor, context: Tensor, opts: dict[str, Any]
) -> Tensor:
    """GPT.generate と同じ順（ペナルティ → 温度 → top-k → top-p）に加工。"""
    penalty = opts.get("repetition_penalty", 1.0)
    if penalty != 1.0:
        logits = apply_repetition_penalty(logits, context, penalty)
    if not opts.get("do_sample", True):
        # 貪欲法は最大の 1 つだけに確率 1 を置いた分布とみなす
        best = logits.argmax(-1, keepdim=True)
        out = torch.full_like(logits, -math.inf)
        return out.scatter(-1, best, 0.0)
    logits = logits / opts.get("temperature", 1.0)
    if opts.get("top_k") is not None:
        logits = top_k_filter(logits, opts["top_k"])
    if opts.get("top_p") is not None:
        logits = top_p_filter(logits, opts["top_p"])
    return logits


@torch.no_grad()
def sampling_stats(
    model: GPT, codec: Tokenizer, opts: dict[str, Any], seed: int = 0
) -> dict[str, Any]:
    """N_SAMPLES 本を 1 文字ずつ生成し、引いた分布の性質を平均する。"""
    block = model.config.block_size
    gen = torch.Generator().manual_seed(seed)
    ids = torch.tensor([codec.encode(PROMPT)] * N_SAMPLES)
    entropies, supports, base_nll = [], [], []
    for _ in range(NEW_TOKENS):
        context = ids[:, -block:]
        raw = model(context)[:, -1]
        logits = processed_logits(raw, context, opts)
        probs = logits.softmax(-1)
        logp = logits.log_softmax(-1)
        ent = -(probs * logp.masked_fill(probs == 0, 0.0)).sum(-1)
        entropies.append(ent / math.log(2))
        supports.append((probs > 0).sum(-1).float())
        nxt = torch.multinomial(probs, 1, generator=gen)
        # 加工する前のモデルの分布で、選んだ文字の負の対数確率
        base_nll.append(-raw.log_softmax(-1).gather(-1, nxt)[:, 0])
        ids = torch.cat([ids, nxt], dim=1)
    n_prompt = len(codec.encode(PROMPT))
    texts = [codec.decode(r.tolist()) for r in ids[:, n_prompt:]]
    return {
        "entropy_bits": float(torch.stack(entropies).mean()),
        "support": float(torch.stack(supports).mean()),
        "base_nll": float(torch.stack(base_nll).mean()),
        "texts": texts,
    }


def text_scores(
    texts: list[str], known_words: set[str]
) -> dict[str, float]:
    """学習データにある単語の割合と、8 文字の並びの重複の割合。"""
    words = [w for t in texts for w in re.findall(r"[A-Za-z]+", t)]
    known = sum(w.lower() in known_words for w in words) / max(
        len(words), 1
    )
    repeated = []
    for t in texts:
        grams = [t[i : i + 8] for i in range(len(t) - 7)]
        if grams:
            repeated.append(1 - len(set(grams)) / len(grams))
    return {
        "known_word_rate": known,
        "repeated_8gram_rate": sum(repeated) / max(len(repeated), 1),
    }


def one_line(text: str, limit: int = 90) -> str:
    """本の表に入れるため、改行を「 / 」にし、Markdown の記号を逃がす。"""
    text = text[:limit].replace("\n", " / ")
    return re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", text)


@torch.no_grad()
def mean_logprob(model: GPT, ids: Tensor, n_prompt: int) -> float:
    """列 ids (seq,) の、生成した部分の 1 文字あたりの対数確率。"""
    logp = model(ids[None, :-1]).log_softmax(-1)[0]
    picked = logp.gather(-1, ids[1:, None])[:, 0]
    return float(picked[n_prompt - 1 :].mean())


def beam_vs_greedy(
    model: GPT, codec: Tokenizer, known: set[str]
) -> dict[str, Any]:
    prompt = torch.tensor([codec.encode(PROMPT)])
    n_prompt = prompt.size(1)
    new = model.config.block_size - n_prompt
    out: dict[str, Any] = {"new_tokens": new}
    runs = {
        "greedy": model.generate(prompt, new)[0],
        "beam4": model.beam_search(prompt, 4, new, length_penalty=1.0),
    }
    for name, ids in runs.items():
        text = codec.decode(ids[n_prompt:].tolist())
        out[name] = {
            "text": text,
            "mean_logprob": mean_logprob(model, ids, n_prompt),
            **text_scores([text], known),
        }
    return out


def length_control(model: GPT, codec: Tokenizer) -> dict[str, Any]:
    stopped = generate_text(
        model,
        codec,
        PROMPT,
        max_new_tokens=300,
        n_samples=4,
        seed=0,
        stop=["\n\n"],
    )
    newline = codec.encode("\n")[0]
    prompt = torch.tensor([codec.encode(PROMPT)] * 4)
    gen = torch.Generator().manual_seed(0)
    ids = model.generate(
        prompt, 50, do_sample=True, eos_id=newline, generator=gen
    )
    body = ids[:, prompt.size(1) :]
    lengths = [
        int((row == newline).nonzero()[0]) + 1
        if (row == newline).any()
        else len(row)
        for row in body
    ]
    return {
        "stop_lengths": [len(t) for t in stopped],
        "stop_texts": stopped,
        "eos_lengths": lengths,
        "eos_total_width": body.size(1),
    }


@torch.no_grad()
def quantization(model: GPT, val_ids: Tensor) -> dict[str, Any]:
    q = quantize_linear_layers(model)
    block = model.config.block_size
    gen = torch.Generator().manual_seed(0)
    starts = torch.randint(
        0, len(val_ids) - block - 1, (64,), generator=gen
    )
    x = torch.stack([val_ids[s : s + block] for s in starts])
    y = torch.stack([val_ids[s + 1 : s + block + 1] for s in starts])
    lf, lq = model(x), q(x)
    err = output_error(lf, lq)
    agree = float((lf.argmax(-1) == lq.argmax(-1)).float().mean())
    loss_f = float(F.cross_entropy(lf.flatten(0, 1), y.flatten()))
    loss_q = float(F.cross_entropy(lq.flatten(0, 1), y.flatten()))
    # 貪欲法の生成: 検証データの 16 文字を 32 本のプロンプトにし、48 文字
    prompts = x[:32, :16]
    gf = model.generate(prompts, 48)[:, 16:]
    gq = q.generate(prompts, 48)[:, 16:]
    same_rows = int((gf == gq).all(-1).sum())
    diff = gf != gq
    first = [int(d.nonzero()[0]) if d.any() else gf.size(1) for d in diff]
    sizes = {
        "float32": model_size_bytes(model),
        "int8": model_size_bytes(q),
    }
    n_linear = sum(
        type(m).__name__ == "QuantizedLinear" for m in q.modules()
    )
    return {
        "size": {k: asdict(v) for k, v in sizes.items()},
        "n_quantized_layers": n_linear,
        "logits_error": asdict(err),
        "top1_agreement": agree,
        "val_loss": {"float32": loss_f, "int8": loss_q},
        "greedy_same_rows": same_rows,
        "greedy_rows": int(gf.size(0)),
        "greedy_first_diff_mean": sum(first) / len(first),
        "greedy_new_tokens": int(gf.size(1)),
    }


def measure_sampling(
    model: GPT, codec: Tokenizer, known: set[str], book: dict[str, str]
) -> dict[str, Any]:
    """1. の生成の設定ごとの統計と生成例。本文の値を book に足す。"""
    sampling: dict[str, Any] = {}
    for name, opts in SETTINGS:
        stats = sampling_stats(model, codec, opts)
        stats.update(text_scores(stats.pop("texts"), known))
        # 本の生成例は、読者が呼ぶ generate_text で作る
        example = generate_text(
            model,
            codec,
            PROMPT,
            max_new_tokens=NEW_TOKENS,
            seed=0,
            **({"do_sample": True} | opts),
        )[0]
        stats["example"] = example
        sampling[name] = {"options": opts, **stats}
        book[f"{name}_entropy"] = f"{stats['entropy_bits']:.2f}"
        book[f"{name}_support"] = f"{stats['support']:.1f}"
        book[f"{name}_known"] = f"{stats['known_word_rate'] * 100:.0f}%"
        book[f"{name}_repeat"] = (
            f"{stats['repeated_8gram_rate'] * 100:.0f}%"
        )
        book[f"{name}_nll"] = f"{stats['base_nll']:.2f}"
        book[f"{name}_example"] = one_line(example)
        print(name, {k: v for k, v in stats.items() if k != "example"})
    return sampling


def beam_book(beam: dict[str, Any]) -> dict[str, str]:
    """2. のビームサーチの結果から、本文の値。"""
    book: dict[str, str] = {}
    for name in ["greedy", "beam4"]:
        r = beam[name]
        book[f"beam_{name}_text"] = one_line(r["text"], 200)
        book[f"beam_{name}_logprob"] = f"{r['mean_logprob']:.3f}"
        book[f"beam_{name}_repeat"] = (
            f"{r['repeated_8gram_rate'] * 100:.0f}%"
        )
    book["beam_new_tokens"] = str(beam["new_tokens"])
    return book


def quantization_book(quant: dict[str, Any]) -> dict[str, str]:
    """4. の量子化の結果から、本文の値。"""
    sz = quant["size"]
    float_bytes = sz["float32"]["state_dict_bytes"]
    int8_bytes = sz["int8"]["state_dict_bytes"]
    return {
        "q_float_bytes": f"{float_bytes:,}",
        "q_int8_bytes": f"{int8_bytes:,}",
        "q_size_ratio": f"{int8_bytes / float_bytes:.2f}",
        "q_layers": str(quant["n_quantized_layers"]),
        "q_rel_error": f"{quant['logits_error']['relative'] * 100:.2f}%",
        "q_max_abs": f"{quant['logits_error']['max_abs']:.3f}",
        "q_top1": f"{quant['top1_agreement'] * 100:.1f}%",
        "q_loss_float": f"{quant['val_loss']['float32']:.4f}",
        "q_loss_int8": f"{quant['val_loss']['int8']:.4f}",
        "q_greedy_same": f"{quant['greedy_same_rows']} / "
        f"{quant['greedy_rows']}",
        "q_greedy_first_diff": f"{quant['greedy_first_diff_mean']:.1f}",
        "q_greedy_tokens": str(quant["greedy_new_tokens"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retrain", action="store_true")
    add_threads_argument(parser)
    args = parser.parse_args()
    set_threads(args.threads)

    model, codec, meta = get_model(args.retrain)
    model.eval()
    text = data_path("tinyshakespeare/input.txt").read_text("utf-8")
    n_train = int(len(text) * (1 - TEXT_LM_CONFIG.val_fraction))
    known = {w.lower() for w in re.findall(r"[A-Za-z]+", text[:n_train])}

    book: dict[str, str] = {}
    sampling = measure_sampling(model, codec, known, book)

    beam = beam_vs_greedy(model, codec, known)
    book.update(beam_book(beam))
    print(beam)

    length = length_control(model, codec)
    book["stop_lengths"] = "・".join(map(str, length["stop_lengths"]))
    book["eos_lengths"] = "・".join(map(str, length["eos_lengths"]))
    print(length)

    ids = torch.tensor(codec.encode(text))
    val_ids = ids[int(len(ids) * (1 - TEXT_LM_CONFIG.val_fraction)) :]
    quant = quantization(model, val_ids)
    book.update(quantization_book(quant))
    print(quant)
    book.update(
        {
            "val_loss": f"{meta['val_loss']:.2f}",
            "n_params": f"{meta['n_params']:,}",
            "prompt": PROMPT.strip(),
            "n_samples": str(N_SAMPLES),
            "new_tokens": str(NEW_TOKENS),
        }
    )
    write_json(
        OUT,
        {
            "description": "第20章: 生成の作り方の比較と量子化（文字単位 GPT）",
            "model": {"path": str(MODEL.relative_to(RESULTS.parent.parent))}
            | meta,
            "prompt": PROMPT,
            "sampling": sampling,
            "beam": beam,
            "length": length,
            "quantization": quant,
            "environment": environment(),
            "book": book,
        },
    )
    print(f"{OUT} に書いた")


if __name__ == "__main__":
    main()
