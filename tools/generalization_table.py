"""benchmarks/results/generalization.json を集計し、本文に載せる値を作る。

benchmarks/bench_generalization.py が「手/種」ごとに書いた記録
（runs）から、手ごとに種を平均した深さ別の完全一致率、貪欲法と
ビームサーチの比較、失敗の分析（長さ別・括弧の深さ別の正解率、
最初に間違えた命令の種類）を計算し、同じ JSON の ``"book"`` に
本文に載せる形の文字列で書く。第16章は ``{{generalization_...}}``
でそれを引く。``--print`` を付けると、MyST の表も表示する。

    .venv/bin/python tools/generalization_table.py --print
"""

from __future__ import annotations

import argparse
import fcntl
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from statistics import mean
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PATH = ROOT / "benchmarks" / "results" / "generalization.json"
TASKS = ROOT / "benchmarks" / "results" / "tasks.json"

VARIANT_ORDER = ("baseline", "rope", "mix4", "stack", "layers4")
LABELS = {
    "baseline": "基準（正弦波の位置、2 層）",
    "rope": "RoPE（`rope`）",
    "mix4": "深さ 4 を 5% 混ぜる（`mix4`）",
    "stack": "スタックの高さを書かせる（`stack`）",
    "layers4": "4 層（`layers4`）",
}
DEPTHS = ("1", "2", "3", "4", "5", "6")
# 長さの区切り（入力の文字数）
LENGTH_BINS = ((1, 15), (16, 23), (24, 31), (32, 64))
ERROR_KINDS = {
    "op>val": "演算子を出すべき所で値を積んだ",
    "val>op": "値を積むべき所で演算子を出した",
    "op>op": "別の演算子を出した",
    "val>val": "別の値を積んだ",
    "val>end": "出力を早く終えた",
    "op>end": "出力を早く終えた",
    "end>op": "終えるべき所で続けた",
    "end>val": "終えるべき所で続けた",
}


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def by_variant(runs: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for key in sorted(runs):
        record = runs[key]
        out[record["variant"]].append(record)
    return out


def _rate(rows: Iterable[dict[str, Any]]) -> tuple[float, int]:
    rows = list(rows)
    if not rows:
        return float("nan"), 0
    return mean(r["correct"] for r in rows), len(rows)


def variant_values(
    name: str, records: Sequence[dict[str, Any]]
) -> dict[str, str]:
    """手 1 つの、深さ別の完全一致率（種の平均と範囲）など。"""
    book: dict[str, str] = {}
    for d in DEPTHS:
        if any(d not in r["exact_match_by_depth"] for r in records):
            continue  # その深さの例が評価のセットに無い
        vals = [r["exact_match_by_depth"][d] for r in records]
        book[f"{name}_d{d}"] = pct(mean(vals))
        if len(vals) > 1:
            book[f"{name}_d{d}_range"] = (
                f"{pct(min(vals))}〜{pct(max(vals))}"
            )
        toks = [r["token_accuracy_by_depth"][d] for r in records]
        book[f"{name}_tok_d{d}"] = pct(mean(toks))
    test = [
        _rate(x for x in r["rows"] if int(x["depth"]) <= 3)[0]
        for r in records
    ]
    book[f"{name}_test"] = pct(mean(test))
    book[f"{name}_seeds"] = str(len(records))
    # 壁時計の時間はほかの作業との CPU の取り合いで大きく揺れるので、
    # このプロセスが使った CPU 時間を載せる
    book[f"{name}_minutes"] = (
        f"{mean(r['cpu_seconds'] for r in records) / 60:.1f} 分"
    )
    book[f"{name}_params"] = f"{records[0]['n_params']:,}"
    return book


def beam_values(records: Sequence[dict[str, Any]]) -> dict[str, str]:
    book: dict[str, str] = {}
    beams = [r["beam"] for r in records if "beam" in r]
    if not beams:
        return book
    book["beam_size"] = str(beams[0]["beam_size"])
    book["beam_seeds"] = str(len(beams))
    for split in ("test", "depth4", "depth5", "depth6"):
        g = mean(b[split]["greedy"] for b in beams)
        bm = mean(b[split]["beam"] for b in beams)
        book[f"beam_{split}_n"] = str(beams[0][split]["n"])
        book[f"beam_{split}_greedy"] = pct(g)
        book[f"beam_{split}_beam"] = pct(bm)
        book[f"beam_{split}_fixed"] = str(
            sum(b[split]["beam_fixed"] for b in beams)
        )
        book[f"beam_{split}_broke"] = str(
            sum(b[split]["beam_broke"] for b in beams)
        )
        ratio = mean(
            b[split]["beam_seconds"] / b[split]["greedy_seconds"]
            for b in beams
        )
        book[f"beam_{split}_slowdown"] = f"{ratio:.0f} 倍"
    return book


def constrained_values(
    records: Sequence[dict[str, Any]],
) -> dict[str, str]:
    book: dict[str, str] = {}
    cons = [r["constrained"] for r in records if "constrained" in r]
    if not cons:
        return book
    for split in ("test", "depth4", "depth5", "depth6"):
        book[f"con_{split}_n"] = str(cons[0][split]["n"])
        for key in ("greedy", "constrained"):
            book[f"con_{split}_{key}"] = pct(
                mean(c[split][key] for c in cons)
            )
    return book


def _length_values(rows: list[dict[str, Any]]) -> dict[str, str]:
    """深さ × 入力の長さの正解率と、深さごとの長さの範囲。"""
    book: dict[str, str] = {}
    for d in DEPTHS:
        for lo, hi in LENGTH_BINS:
            sel = [
                x
                for x in rows
                if str(x["depth"]) == d and lo <= x["length"] <= hi
            ]
            rate, n = _rate(sel)
            key = f"fail_d{d}_len{lo}"
            book[key] = "―" if n < 20 else pct(rate)
            book[key + "_n"] = str(n)
        lens = [x["length"] for x in rows if str(x["depth"]) == d]
        if not lens:
            continue
        book[f"fail_d{d}_len_range"] = f"{min(lens)}〜{max(lens)}"
        book[f"fail_d{d}_len_mean"] = f"{mean(lens):.1f}"
    return book


def _paren_and_short_values(rows: list[dict[str, Any]]) -> dict[str, str]:
    """深さ 4〜6 を括弧の深さで分けた正解率と、学習の長さに収まる式の正解率。"""
    book: dict[str, str] = {}
    # 学習した長さの上限（深さ 1〜3 のテストの最長）
    max_len = max(x["length"] for x in rows if x["depth"] <= 3)
    book["fail_train_max_len"] = str(max_len)
    book["fail_test_max_paren"] = str(
        max(x["paren"] for x in rows if x["depth"] <= 3)
    )
    for d in ("4", "5", "6"):
        for p in range(0, 7):
            sel = [
                x for x in rows if str(x["depth"]) == d and x["paren"] == p
            ]
            rate, n = _rate(sel)
            if n:
                book[f"fail_d{d}_paren{p}"] = "―" if n < 20 else pct(rate)
                book[f"fail_d{d}_paren{p}_n"] = str(n)
    for d in ("4", "5", "6"):
        sel = [
            x
            for x in rows
            if str(x["depth"]) == d and x["length"] <= max_len
        ]
        rate, n = _rate(sel)
        book[f"fail_d{d}_short"] = "―" if n < 20 else pct(rate)
        book[f"fail_d{d}_short_n"] = str(n)
    return book


def _error_values(rows: list[dict[str, Any]]) -> dict[str, str]:
    """深い式の間違いの種類と、最初に間違えた位置。"""
    book: dict[str, str] = {}
    wrong = [x for x in rows if x["depth"] >= 4 and not x["correct"]]
    kinds = Counter(x["err_kind"] for x in wrong)
    for kind, n in kinds.items():
        book[f"fail_kind_{kind.replace('>', '_')}"] = pct(n / len(wrong))
    book["fail_n_wrong"] = str(len(wrong))
    book["fail_wellformed_wrong"] = pct(
        mean(x["well_formed"] for x in wrong)
    )
    rel = [x["err_pos"] / x["n_instr"] for x in wrong]
    book["fail_err_pos_rel_mean"] = pct(mean(rel))
    book["fail_err_pos_first_half"] = pct(mean(v < 0.5 for v in rel))
    return book


def failure_values(records: Sequence[dict[str, Any]]) -> dict[str, str]:
    """基準の全部の種をまとめた、失敗の分析。"""
    rows = [x for r in records for x in r["rows"]]
    return {
        **_length_values(rows),
        **_paren_and_short_values(rows),
        **_error_values(rows),
    }


def task_values() -> dict[str, str]:
    """bench_tasks.py の結果（tasks.json）から、課題ごとの表の値。"""
    if not TASKS.exists():
        return {}
    tasks = json.loads(TASKS.read_text(encoding="utf-8"))["tasks"]
    book: dict[str, str] = {}
    for name, r in tasks.items():
        seconds = r["train_seconds"]
        book[f"task_{name}_time"] = (
            f"{seconds:.0f} 秒"
            if seconds < 120
            else f"{seconds / 60:.1f} 分"
        )
        book[f"task_{name}_test"] = pct(r["test_exact_match"])
        if r.get("general_exact_match") is not None:
            book[f"task_{name}_general"] = pct(r["general_exact_match"])
    return book


def compute(data: dict[str, Any]) -> dict[str, str]:
    groups = by_variant(data["runs"])
    book: dict[str, str] = task_values()
    for name in VARIANT_ORDER:
        if name in groups:
            book.update(variant_values(name, groups[name]))
    if "baseline" in groups:
        book.update(beam_values(groups["baseline"]))
        book.update(constrained_values(groups["baseline"]))
        book.update(failure_values(groups["baseline"]))
    # 深さ 4〜6 の評価セットの大きさ
    rows = groups["baseline"][0]["rows"] if "baseline" in groups else []
    for d in DEPTHS:
        book[f"n_d{d}"] = str(sum(str(x["depth"]) == d for x in rows))
    book["n_test"] = str(sum(x["depth"] <= 3 for x in rows))
    return book


def myst_table(data: dict[str, Any]) -> str:
    groups = by_variant(data["runs"])
    head = "| 手 | 種 | " + " | ".join(f"深さ {d}" for d in DEPTHS) + " |"
    lines = [head, "|" + " --- |" * (len(DEPTHS) + 2)]
    for name in VARIANT_ORDER:
        if name not in groups:
            continue
        cells = [f"{{{{generalization_{name}_d{d}}}}}" for d in DEPTHS]
        lines.append(
            f"| {LABELS[name]} | {{{{generalization_{name}_seeds}}}} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--print", action="store_true")
    parser.add_argument("--path", type=Path, default=PATH)
    args = parser.parse_args()
    path: Path = args.path
    # bench_generalization.py と同じロックを取ってから読み書きする
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text(encoding="utf-8"))
        data["book"] = compute(data)
        path.write_text(
            json.dumps(data, ensure_ascii=False, indent=2) + "\n",
            encoding="utf-8",
        )
    if args.print:
        for key, value in data["book"].items():
            print(f"{key}: {value}")
        print(myst_table(data))


if __name__ == "__main__":
    main()
