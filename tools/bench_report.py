"""benchmarks/results/*.json から、付録「ベンチマークの結果」の表（MyST）を作る。

本文の数値を手で書き写さず、計測した JSON から作る。
出力: book/_generated/benchmarks.md（book/appendix/benchmarks.md が取り込む）。
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
OUT = ROOT / "book" / "_generated" / "benchmarks.md"

Rows = list[tuple[str, str]]


def _kv_cache(d: dict[str, Any]) -> Rows:
    c = d["config"]
    return [
        (
            "モデル",
            f"{c['n_layers']} 層・{c['n_heads']} ヘッド・d_model {c['d_model']}・語彙 {c['vocab_size']}",
        ),
        (
            "生成",
            f"プロンプト {c['prompt']} トークン + {c['new_tokens']} トークン（貪欲法）",
        ),
        (
            "キャッシュあり",
            f"{d['tokens_per_s']['cache']['wall']:.0f} tokens/s",
        ),
        (
            "キャッシュなし",
            f"{d['tokens_per_s']['no_cache']['wall']:.0f} tokens/s",
        ),
        (
            "速度比",
            f"{d['speedup']['wall']:.1f} 倍（目標 {d['target']:.0f} 倍以上）",
        ),
        ("出力の一致", "同一" if d["identical_output"] else "不一致"),
    ]


def _attention(d: dict[str, Any]) -> Rows:
    c = d["config"]
    ms = d["ms_per_step_median"]
    return [
        (
            "モデル",
            f"{c['n_layers']} 層・{c['n_heads']} ヘッド・d_model {c['d_model']}・系列長 {c['block_size']}・バッチ {c['batch']}",
        ),
        (
            "easy_transformer の GPT（高速経路）",
            f"{ms['easy_transformer.GPT']['wall']:.1f} ms/ステップ",
        ),
        (
            "nn.TransformerEncoder（因果マスク）",
            f"{ms['nn.TransformerEncoder']['wall']:.1f} ms/ステップ",
        ),
        (
            "速度比（中央値）",
            f"{d['speed_ratio_median']['wall']:.2f} 倍（目標 {d['target']} 倍以上）",
        ),
    ]


def _bpe(d: dict[str, Any]) -> Rows:
    return [
        (
            "学習データ",
            f"{d['text_source']} の先頭 {d['train_chars']:,} 文字、語彙 {d['vocab_size']}",
        ),
        (
            "学習時間（自前 / HF tokenizers）",
            f"{d['train_seconds']['ours']:.2f} 秒 / {d['train_seconds']['hf']:.2f} 秒（{d['train_ratio_ours_over_hf']:.0f} 倍の時間）",
        ),
        (
            "encode（1 つの文字列、自前 / HF）",
            f"{d['encode_mb_per_second']['ours_whole']:.2f} MB/s / {d['encode_mb_per_second']['hf_whole']:.2f} MB/s",
        ),
        (
            "encode（行ごと、自前 / HF）",
            f"{d['encode_mb_per_second']['ours_lines']:.2f} MB/s / {d['encode_mb_per_second']['hf_lines']:.2f} MB/s",
        ),
        (
            "結果の一致",
            "マージ列・トークン列とも HF と同一"
            if d["same_merges_as_hf"] and d["same_ids_as_hf"]
            else "不一致あり",
        ),
    ]


def _quantization(d: dict[str, Any]) -> Rows:
    labels = {
        "own_int8": "自前の int8",
        "torch_ao_dynamic": "torch.ao の動的量子化",
    }
    rows: Rows = []
    for case in d["cases"]:
        base = case["results"]["float32"]["size"]["state_dict_bytes"]
        for key, label in labels.items():
            r = case["results"][key]
            rows.append(
                (
                    f"{case['name']}: {label}",
                    f"サイズ比 {r['size']['state_dict_bytes'] / base:.3f}、"
                    f"相対誤差 {r['error']['relative'] * 100:.2f}%、"
                    f"推論時間の比 {r['time_ratio_to_float32']:.2f}",
                )
            )
    return rows


def _tasks(d: dict[str, Any]) -> Rows:
    rows: Rows = []
    for name, t in d["tasks"].items():
        c = t["config"]
        limit = t.get("time_limit_seconds")
        target = t.get("exact_match_target")
        goal = (
            f"（目標: {limit / 60:.0f} 分以内・{target * 100:.0f}% 以上）"
            if limit and target
            else ""
        )
        rows.append(
            (
                f"{name}（レベル 1〜{c['max_level']}、{c['n_train']:,} 例）",
                f"学習 {t['train_seconds']:.0f} 秒・{t['steps']} ステップ、"
                f"テスト {t['test_exact_match'] * 100:.1f}%、"
                f"汎化テスト {t['general_exact_match'] * 100:.1f}%{goal}",
            )
        )
    return rows


def _minilang(d: dict[str, Any]) -> Rows:
    c = d["config"]
    s = d["sampling"]
    return [
        (
            "モデル",
            f"{c['n_layers']} 層・d_model {c['d_model']}・{d['n_params']:,} パラメータ",
        ),
        (
            "学習",
            f"{d['steps']} ステップ・{d['train_seconds']:.0f} 秒、検証損失 {d['val_loss']:.3f}",
        ),
        (
            "生成",
            f"温度 {s['temperature']}、{s['n_samples']} 本、完成したプログラム {d['n_generated_programs']} 行",
        ),
        (
            "パーサが受理した割合",
            f"{d['acceptance_rate'] * 100:.1f}%（目標 {d['target'] * 100:.0f}% 以上）",
        ),
        ("学習データに無かったもの", f"{d['novel_rate'] * 100:.1f}%"),
        (
            "最後まで評価できたもの",
            f"{d['run_rate'] * 100:.1f}%（未定義の変数や 0 除算で止まるものを除く）",
        ),
    ]


def _char_gpt(d: dict[str, Any]) -> Rows:
    c = d["config"]
    m = d["median_tokens_per_sec"]
    return [
        (
            "モデル",
            f"{c['n_layers']} 層・{c['n_heads']} ヘッド・d_model {c['d_model']}・ブロック長 {c['block_size']}・バッチ {c['batch_size']}",
        ),
        ("本書の GPT", f"{m['ours']:,.0f} tokens/s"),
        (
            "nn.TransformerEncoder（因果マスク）",
            f"{m['torch']:,.0f} tokens/s",
        ),
        ("速度比", f"{d['ratio_ours_over_torch']:.2f} 倍"),
    ]


def _shakespeare(d: dict[str, Any]) -> Rows:
    c = d["config"]
    return [
        (
            "モデル",
            f"{c['n_layers']} 層・{c['n_heads']} ヘッド・d_model {c['d_model']}・ブロック長 {c['block_size']}・バッチ {c['batch_size']}・dropout {c['dropout']}",
        ),
        (
            "学習",
            f"{d['steps']} 反復・{d['train_seconds']:.0f} 秒（{d['tokens_per_sec']:,.0f} tokens/s）",
        ),
        (
            "検証損失",
            f"{d['val_loss']:.3f}（よく知られた公開結果は約 {d['reference_val_loss']}）",
        ),
    ]


FORMATTERS: dict[str, tuple[str, Callable[[dict[str, Any]], Rows]]] = {
    "kv_cache.json": ("KV キャッシュによる生成の高速化", _kv_cache),
    "attention.json": ("高速経路の注意機構の学習速度", _attention),
    "bpe.json": (
        "バイトレベル BPE と Hugging Face tokenizers の比較",
        _bpe,
    ),
    "quantization.json": (
        "int8 重み量子化（自前と torch.ao）",
        _quantization,
    ),
    "tasks.json": ("系列変換の課題（エンコーダ・デコーダ）", _tasks),
    "minilang_lm.json": ("ミニ言語のプログラムを書く GPT", _minilang),
    "char_gpt.json": ("文字単位 GPT の学習速度", _char_gpt),
    "shakespeare.json": ("tinyshakespeare の文字単位 GPT", _shakespeare),
}


def table(title: str, rows: Rows, source: str) -> str:
    lines = [
        f"### {title}",
        "",
        "```{list-table}",
        ":header-rows: 1",
        ":widths: 40 60",
        "",
    ]
    lines += ["* - 項目", "  - 結果"]
    for key, value in rows:
        lines += [f"* - {key}", f"  - {value}"]
    lines += ["```", "", f"計測の記録: `benchmarks/results/{source}`", ""]
    return "\n".join(lines)


def main() -> int:
    parts = []
    for name, (title, fmt) in FORMATTERS.items():
        path = RESULTS / name
        if not path.exists():
            continue
        try:
            rows = fmt(json.loads(path.read_text(encoding="utf-8")))
        except (KeyError, TypeError) as exc:
            print(f"{path}: 形式が想定と違う（{exc!r}）", file=sys.stderr)
            return 1
        parts.append(table(title, rows, name))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        "\n".join(parts) or "計測の記録がまだありません。\n",
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
