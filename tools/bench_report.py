"""benchmarks/results/*.json から、付録の表と README の到達点の表を作る。

本文と README の数値を手で書き写さず、計測した JSON から作る。

- 付録「ベンチマークの結果」の表（MyST）: book/_generated/benchmarks.md
  （book/appendix/benchmarks.md が取り込む）
- README.md の到達点の表: `<!-- bench-report:start -->` と
  `<!-- bench-report:end -->` のコメントで囲んだ範囲を書き換える。

`--check` を付けると何も書かず、README が JSON と食い違っていれば
終了コード 1 で終わる（tests/test_bench_report.py も同じことを確かめる）。
付録の表はビルドのたびに作り直すので（Makefile）、食い違うことはない。
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
OUT = ROOT / "book" / "_generated" / "benchmarks.md"
README = ROOT / "README.md"
START = "<!-- bench-report:start -->"
END = "<!-- bench-report:end -->"

Rows = list[tuple[str, str]]
Json = dict[str, Any]


def ratio_text(r: Mapping[str, Any], digits: int = 2) -> str:
    """回ごとの比の中央値と範囲: 「1.23 倍（範囲 1.10〜1.30、7 回）」。"""
    f = f"{{:.{digits}f}}"
    return (
        f"{f.format(r['median'])} 倍（範囲 {f.format(r['min'])}〜"
        f"{f.format(r['max'])}、{r['rounds']} 回）"
    )


def checks_text(d: Json) -> str:
    """出力の一致の確認（checks）を 1 行にする。"""
    checks = d.get("checks", [])
    if not checks:
        return "確認なし"
    ok = all(c["passed"] for c in checks)
    names = "、".join(c["what"] for c in checks)
    return f"{'一致' if ok else '不一致あり'}（{names}）"


def model_text(c: Mapping[str, Any]) -> str:
    return (
        f"{c['n_layers']} 層・{c['n_heads']} ヘッド・d_model {c['d_model']}"
    )


def threads_text(d: Json) -> str:
    env = d.get("environment", {})
    return f"{env.get('threads', '?')} スレッド"


# ---------------------------------------------------------------------
# 付録の表（計測ごと）
# ---------------------------------------------------------------------


def kv_generation_label(d: Json) -> str:
    """生成の設定（JSON の generation）から作るラベル。"""
    g = d["generation"]
    strategy = {
        "greedy": "貪欲法",
        "sample": "サンプリング",
    }.get(g["strategy"], g["strategy"])
    return (
        f"プロンプト {g['prompt_tokens']} トークン + {g['new_tokens']} "
        f"トークン（{strategy}）"
    )


def _kv_cache(d: Json) -> Rows:
    c = d["config"]
    t = d["tokens_per_s_median"]
    return [
        ("モデル", f"{model_text(c)}・語彙 {c['vocab_size']}"),
        ("生成", kv_generation_label(d)),
        ("方法", f"{d['method']}（{threads_text(d)}）"),
        ("出力の一致", checks_text(d)),
        ("キャッシュあり", f"{t['cache']['cpu']:.0f} tokens/s（CPU 時間）"),
        (
            "キャッシュなし",
            f"{t['no_cache']['cpu']:.0f} tokens/s（CPU 時間）",
        ),
        (
            "速度比（キャッシュなしの時間 / ありの時間）",
            f"{ratio_text(d['speedup']['cpu'], 1)}"
            f"（目標 {d['target']:.0f} 倍以上）",
        ),
    ]


def _attention(d: Json) -> Rows:
    c = d["config"]
    ms = d["ms_per_step_median"]
    return [
        (
            "モデル",
            f"{model_text(c)}・系列長 {c['block_size']}・バッチ {c['batch']}",
        ),
        ("方法", f"{d['method']}（{threads_text(d)}）"),
        ("出力の一致", checks_text(d)),
        (
            "easy_transformer の GPT（高速経路）",
            f"{ms['easy_transformer.GPT']['cpu']:.1f} ms/ステップ（CPU 時間）",
        ),
        (
            "nn.TransformerEncoder（因果マスク）",
            f"{ms['nn.TransformerEncoder']['cpu']:.1f} ms/ステップ（CPU 時間）",
        ),
        (
            "速さの比（GPT / nn.TransformerEncoder）",
            f"{ratio_text(d['speed_ratio']['cpu'])}（目標 {d['target']} 倍以上）",
        ),
    ]


def _bpe(d: Json) -> Rows:
    mb = d["encode_mb_per_second_median"]
    enc = d["encode_time_ratio_ours_over_hf"]
    return [
        (
            "データ",
            f"{d['text_source']}（学習は先頭 {d['train_chars']:,} 文字、"
            f"encode は {d['encode_chars']:,} 文字）、語彙 {d['vocab_size']}",
        ),
        (
            "方法",
            f"{d['method']}（{threads_text(d)}、RAYON_NUM_THREADS="
            f"{d['environment'].get('rayon_threads')}）",
        ),
        ("結果の一致", checks_text(d)),
        (
            "学習の時間の比（自前 / HF tokenizers）",
            ratio_text(d["train_time_ratio_ours_over_hf"], 0),
        ),
        (
            "encode（1 つの文字列）の時間の比",
            f"{ratio_text(enc['whole'], 1)}、自前 {mb['ours_whole']:.2f}"
            f" MB/s・HF {mb['hf_whole']:.2f} MB/s",
        ),
        (
            "encode（行ごと）の時間の比",
            f"{ratio_text(enc['lines'], 1)}、自前 {mb['ours_lines']:.2f}"
            f" MB/s・HF {mb['hf_lines']:.2f} MB/s",
        ),
    ]


def _quantization(d: Json) -> Rows:
    labels = {
        "own_int8": "自前の int8",
        "torch_ao_dynamic": "torch.ao の動的量子化",
    }
    rows: Rows = [("方法", f"{d['method']}（{threads_text(d)}）")]
    for case in d["cases"]:
        rows.append((f"{case['name']}: 確認", checks_text(case)))
        base = case["results"]["float32"]["size"]["state_dict_bytes"]
        for key, label in labels.items():
            r = case["results"][key]
            rows.append(
                (
                    f"{case['name']}: {label}",
                    f"サイズ比 {r['size']['state_dict_bytes'] / base:.3f}、"
                    f"相対誤差 {r['error']['relative'] * 100:.2f}%、"
                    "推論時間の比 "
                    f"{ratio_text(r['time_ratio_to_float32'])}",
                )
            )
    return rows


def _compile(d: Json) -> Rows:
    c = d["config"]
    cold, warm = d["cold_cache"], d["warm_cache"]
    ms = cold["ms_per_call"]
    return [
        (
            "計算",
            f"{c['function']}、{c['elements']:,} 要素の {c['dtype']}",
        ),
        ("方法", f"{d['method']}（{threads_text(d)}）"),
        ("出力の一致", checks_text(d)),
        (
            "最初の呼び出し（コンパイルを含む）",
            f"キャッシュが空 {cold['first_call_seconds']:.1f} 秒、"
            f"キャッシュあり {warm['first_call_seconds']:.1f} 秒",
        ),
        (
            "1 回の時間（CPU 時間の中央値）",
            f"eager {ms['eager']['median']:.1f} ms、融合後 "
            f"{ms['fused']['median']:.1f} ms",
        ),
        (
            "速さの比（eager / 融合後）",
            ratio_text(cold["ratio_eager_over_fused"], 1),
        ),
        (
            "コンパイルの時間を取り返す回数",
            f"{d['break_even_calls']:,.0f} 回",
        ),
    ]


def _tasks(d: Json) -> Rows:
    rows: Rows = []
    for name, t in d["tasks"].items():
        c = t["config"]
        limit = t.get("time_limit_seconds")
        target = t.get("exact_match_target")
        goal = ""
        if limit and target:
            missed = [
                what
                for what, ok in (
                    ("時間", t["train_seconds"] <= limit),
                    ("一致率", t["test_exact_match"] >= target),
                )
                if not ok
            ]
            verdict = (
                "・".join(missed) + "は届かず" if missed else "どちらも達成"
            )
            goal = (
                f"（目標: {limit / 60:.0f} 分以内・{target * 100:.0f}% 以上。"
                f"{verdict}）"
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


def _minilang(d: Json) -> Rows:
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
            "構文解析器が受理した割合",
            f"{d['acceptance_rate'] * 100:.1f}%（目標 {d['target'] * 100:.0f}% 以上）",
        ),
        ("学習データに無かったもの", f"{d['novel_rate'] * 100:.1f}%"),
        (
            "最後まで評価できたもの",
            f"{d['run_rate'] * 100:.1f}%（未定義の変数や 0 除算で止まるものを除く）",
        ),
    ]


def _char_gpt(d: Json) -> Rows:
    c = d["config"]
    m = d["median_tokens_per_sec"]
    return [
        (
            "モデル",
            f"{model_text(c)}・ブロック長 {c['block_size']}・バッチ {c['batch_size']}",
        ),
        ("方法", f"{d['method']}（{threads_text(d)}）"),
        ("出力の一致", checks_text(d)),
        ("本書の GPT", f"{m['ours']['cpu']:,.0f} tokens/s（CPU 時間）"),
        (
            "nn.TransformerEncoder（因果マスク）",
            f"{m['torch']['cpu']:,.0f} tokens/s（CPU 時間）",
        ),
        (
            "速さの比（本書 / PyTorch）",
            ratio_text(d["speed_ratio_ours_over_torch"]["cpu"]),
        ),
    ]


def recipe_text(recipe: Mapping[str, Any]) -> str:
    """パッケージの既定の作り方との違いを並べる。"""
    diffs = []
    if not recipe.get("special_tokens", True):
        diffs.append("特殊トークンなしの 65 文字の語彙")
    if recipe.get("decay_embeddings"):
        diffs.append("埋め込みにも重み減衰")
    if recipe.get("exact_gelu"):
        diffs.append("厳密な GELU")
    if recipe.get("zero_init_proj"):
        diffs.append("残差の出口の射影を 0 で初期化")
    if recipe.get("position", "learned") == "rope":
        diffs.append("位置は RoPE")
    if recipe.get("beta2") is not None:
        diffs.append(f"AdamW の β2 {recipe['beta2']}")
    return "・".join(diffs) if diffs else "パッケージの既定"


def normalize_shakespeare(d: Json) -> Json:
    """1 つの種だけを記録した古い形の JSON も、種ごとの runs の形にする。"""
    if "runs" in d:
        return d
    run = {k: d[k] for k in ["seed", "val_loss", "train_seconds", "steps"]}
    return {
        **d,
        "recipe_name": "package",
        "recipe": {"special_tokens": True},
        "runs": [run],
        "val_loss_mean": d.get("val_loss_mean", d["val_loss"]),
        "jobs": 1,
    }


def _shakespeare(d: Json) -> Rows:
    d = normalize_shakespeare(d)
    c = d["config"]
    runs = d["runs"]
    rows = [
        (
            "モデル",
            f"{model_text(c)}・ブロック長 {c['block_size']}・バッチ {c['batch_size']}・dropout {c['dropout']}",
        ),
        (
            "作り方",
            f"{d['recipe_name']}: {recipe_text(d['recipe'])}",
        ),
        (
            "学習",
            f"{runs[0]['steps']} 反復・1 スレッド、学習 1 回の時間の中央値 "
            + (
                f"CPU {statistics.median(r['cpu_seconds'] for r in runs):.0f}"
                " 秒・"
                if "cpu_seconds" in runs[0]
                else ""
            )
            + f"壁時計 {statistics.median(r['train_seconds'] for r in runs):.0f}"
            f" 秒（{d['jobs']} つの種を並べて学習）",
        ),
        (
            "検証損失（末尾 10% の 20 バッチ）",
            "、".join(f"種 {r['seed']}: {r['val_loss']:.3f}" for r in runs)
            + f"、平均 {d['val_loss_mean']:.3f}"
            f"（公開されている nanoGPT の結果は約 {d['reference_val_loss']}）",
        ),
    ]
    if "val_loss_full_mean" in d:
        rows.append(
            (
                "検証データ全体での損失（参考）",
                f"平均 {d['val_loss_full_mean']:.3f}",
            )
        )
    if "speed_check" in d:
        r = d["speed_check"]["time_ratio_package_over_recipe"]
        rows.append(
            (
                "速さ（パッケージの既定の作り方の時間 / この作り方の時間）",
                ratio_text(r),
            )
        )
    return rows


def shakespeare_ablation(results: Path) -> str:
    """shakespeare*.json の検証損失を、作り方ごとに 1 行にまとめた表。

    同じ作り方の種を別々のファイルに記録したときは、1 行にまとめる。
    """
    groups: dict[str, tuple[Mapping[str, Any], list[Json]]] = {}
    for path in sorted(results.glob("shakespeare*.json")):
        d = normalize_shakespeare(json.loads(path.read_text("utf-8")))
        recipe, runs = groups.setdefault(
            d["recipe_name"], (d["recipe"], [])
        )
        runs.extend(d["runs"])
    rows: list[tuple[str, str, str, str]] = []
    for name, (recipe, runs) in groups.items():
        runs = sorted(runs, key=lambda r: r["seed"])
        mean = statistics.mean(r["val_loss"] for r in runs)
        full = [r["val_loss_full"] for r in runs if "val_loss_full" in r]
        rows.append(
            (
                f"{name}（{recipe_text(recipe)}）",
                "・".join(str(r["seed"]) for r in runs),
                "・".join(f"{r['val_loss']:.3f}" for r in runs),
                f"{mean:.3f}"
                + (
                    f"（全体 {statistics.mean(full):.3f}）"
                    if len(full) == len(runs)
                    else ""
                ),
            )
        )
    if not rows:
        return ""
    lines = [
        "### tinyshakespeare の作り方の比較",
        "",
        "```{list-table}",
        ":header-rows: 1",
        ":widths: 40 10 25 25",
        "",
        "* - 作り方",
        "  - 種",
        "  - 検証損失（20 バッチ）",
        "  - 平均（検証データ全体）",
    ]
    for label, seeds, losses, mean in rows:
        lines += [
            f"* - {label}",
            f"  - {seeds}",
            f"  - {losses}",
            f"  - {mean}",
        ]
    lines += [
        "```",
        "",
        "計測の記録: `benchmarks/results/shakespeare*.json`",
        "",
    ]
    return "\n".join(lines)


FORMATTERS: dict[str, tuple[str, Callable[[Json], Rows]]] = {
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
    "compile.json": ("torch.compile による演算の融合（第2章）", _compile),
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


def load(results: Path, name: str) -> Json | None:
    path = results / name
    if not path.exists():
        return None
    data: Json = json.loads(path.read_text(encoding="utf-8"))
    return data


def appendix(results: Path = RESULTS) -> str:
    """付録に取り込む MyST の文字列。"""
    parts = []
    for name, (title, fmt) in FORMATTERS.items():
        d = load(results, name)
        if d is None:
            continue
        parts.append(table(title, fmt(d), name))
        if name == "shakespeare.json":
            parts.append(shakespeare_ablation(results))
    return "\n".join(parts) or "計測の記録がまだありません。\n"


# ---------------------------------------------------------------------
# README の到達点の表
# ---------------------------------------------------------------------


def _task_rows(tasks: dict[str, Any]) -> list[tuple[str, str]]:
    """系列変換の課題（tasks.json）の 2 行。"""
    t = tasks["tasks"]
    rpn = t["rpn"]
    simple = [t[k] for k in ("copy", "reverse", "sort")]
    seconds = statistics.median(s["train_seconds"] for s in simple)
    return [
        (
            f"中置記法 → 逆ポーランド記法（深さ 1〜{rpn['config']['max_level']}）",
            f"学習 {rpn['train_seconds']:.0f} 秒でテストの完全一致率 "
            f"{rpn['test_exact_match'] * 100:.1f}%（より深い式の汎化"
            f"テストは {rpn['general_exact_match'] * 100:.1f}%）",
        ),
        (
            "コピー・反転・ソート（長さ 1〜"
            f"{simple[0]['config']['max_level']}）",
            f"各 {seconds:.0f} 秒前後で "
            + "・".join(
                f"{s['test_exact_match'] * 100:.1f}%" for s in simple
            ),
        ),
    ]


def _minilang_row(mini: dict[str, Any]) -> tuple[str, str]:
    """ミニ言語の生成（minilang_lm.json）の行。"""
    return (
        "ミニ言語のプログラム生成",
        f"生成したプログラムの {mini['acceptance_rate'] * 100:.1f}% が"
        "構文解析器に受理され、"
        f"{mini['run_rate'] * 100:.1f}% が最後まで評価できる"
        "（未定義の変数や 0 除算で止まるものを除く）",
    )


def _kv_cache_row(kv: dict[str, Any]) -> tuple[str, str]:
    """KV キャッシュ（kv_cache.json）の行。"""
    g = kv["generation"]
    strategy = "貪欲法" if g["strategy"] == "greedy" else g["strategy"]
    r = kv["speedup"]["cpu"]
    ok = all(c["passed"] for c in kv["checks"])
    return (
        f"KV キャッシュ（{g['new_tokens']} トークンの{strategy}の生成）",
        f"キャッシュなしの {r['median']:.1f} 倍の速さ（CPU 時間の比の"
        f"中央値、{r['rounds']} 回の範囲 {r['min']:.1f}〜"
        f"{r['max']:.1f} 倍）で、出力のトークン列は"
        f"{'同一' if ok else '不一致'}",
    )


def _shakespeare_row(sh: dict[str, Any]) -> tuple[str, str]:
    """tinyshakespeare（shakespeare.json）の行。"""
    sh = normalize_shakespeare(sh)
    c = sh["config"]
    runs = sh["runs"]
    # 壁時計の時間はほかの作業の負荷で大きく揺れるので、CPU 時間で示す
    key = "cpu_seconds" if "cpu_seconds" in runs[0] else "train_seconds"
    seconds = statistics.median(r[key] for r in runs)
    recipe = recipe_text(sh["recipe"])
    if len(runs) == 1:
        detail = f"種 {runs[0]['seed']}"
    else:
        detail = (
            "種 "
            + "・".join(str(r["seed"]) for r in runs)
            + " の平均。それぞれ "
            + "・".join(f"{r['val_loss']:.3f}" for r in runs)
        )
    return (
        f"tinyshakespeare（{c['n_layers']} 層・{c['d_model']} 次元・"
        f"{runs[0]['steps']} 反復）",
        f"検証損失 {sh['val_loss_mean']:.3f}（{recipe}。{detail}、"
        f"学習 1 回の CPU 時間 {seconds:.0f} 秒）",
    )


def readme_rows(results: Path = RESULTS) -> list[tuple[str, str]]:
    """README の到達点の表の行（記録の無いものは飛ばす）。"""
    rows: list[tuple[str, str]] = []
    tasks = load(results, "tasks.json")
    if tasks is not None:
        rows.extend(_task_rows(tasks))
    mini = load(results, "minilang_lm.json")
    if mini is not None:
        rows.append(_minilang_row(mini))
    kv = load(results, "kv_cache.json")
    if kv is not None:
        rows.append(_kv_cache_row(kv))
    sh = load(results, "shakespeare.json")
    if sh is not None:
        rows.append(_shakespeare_row(sh))
    return rows


def readme_table(results: Path = RESULTS) -> str:
    lines = [
        START,
        "<!-- この表は tools/bench_report.py が benchmarks/results/*.json から"
        "作る。手で直さない -->",
        "",
        "| 実験 | 結果 |",
        "| --- | --- |",
    ]
    lines += [f"| {a} | {b} |" for a, b in readme_rows(results)]
    lines += ["", END]
    return "\n".join(lines)


def render_readme(text: str, results: Path = RESULTS) -> str:
    """README の本文のうち、マーカーで囲んだ範囲を作り直した文字列。"""
    start = text.find(START)
    end = text.find(END)
    if start < 0 or end < start:
        raise ValueError(
            f"README.md に {START} と {END} で囲んだ範囲がありません"
        )
    return text[:start] + readme_table(results) + text[end + len(END) :]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="書き換えず、README と付録が JSON と食い違えば終了コード 1",
    )
    args = parser.parse_args()
    try:
        generated = appendix()
        readme = README.read_text(encoding="utf-8")
        new_readme = render_readme(readme)
    except (KeyError, TypeError, ValueError) as exc:
        print(f"形式が想定と違う（{exc!r}）", file=sys.stderr)
        return 1
    if args.check:
        # 付録の表（book/_generated/）はビルドのたびに作るので、
        # 食い違いうるのはコミットしてある README だけ
        if new_readme != readme:
            print(
                "README.md の到達点の表が JSON と食い違っています"
                "（.venv/bin/python tools/bench_report.py で作り直す）",
                file=sys.stderr,
            )
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(generated, encoding="utf-8")
    if new_readme != readme:
        README.write_text(new_readme, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
