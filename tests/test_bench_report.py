"""README と付録の計測値が benchmarks/results/*.json と一致することを確かめる。

README の到達点の表は tools/bench_report.py が JSON から作る。JSON を
計測し直したのに README を作り直し忘れると、このテストが落ちる。
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def load_report() -> ModuleType:
    path = ROOT / "tools" / "bench_report.py"
    spec = importlib.util.spec_from_file_location("bench_report", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = load_report()


def copy_results(tmp_path: Path) -> Path:
    out = tmp_path / "results"
    out.mkdir()
    for path in RESULTS.glob("*.json"):
        shutil.copy(path, out / path.name)
    return out


def edit(path: Path, change: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def test_readme_table_matches_results() -> None:
    """README の到達点の表が、いまの JSON から作った表と同じ。"""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert report.render_readme(readme) == readme, (
        "README.md の表が JSON と食い違っています。"
        ".venv/bin/python tools/bench_report.py で作り直してください"
    )


def test_readme_check_detects_a_changed_result(tmp_path: Path) -> None:
    """JSON の値が変われば、README の表も変わる（手で写した値ではない）。"""
    results = copy_results(tmp_path)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    def change(d: dict[str, Any]) -> None:
        d["val_loss_mean"] = 9.876

    edit(results / "shakespeare.json", change)
    new = report.render_readme(readme, results)
    assert new != readme
    assert "検証損失 9.876" in new


def test_every_result_has_a_table() -> None:
    """付録に載せる計測はすべて表になり、どれも形式が想定どおり。"""
    text = report.appendix()
    for name, (title, _) in report.FORMATTERS.items():
        if (RESULTS / name).exists():
            assert f"### {title}" in text


@pytest.mark.parametrize(
    ("strategy", "label"),
    [("greedy", "貪欲法"), ("sample", "サンプリング")],
)
def test_kv_cache_label_comes_from_the_generation_config(
    tmp_path: Path, strategy: str, label: str
) -> None:
    """KV キャッシュの表のラベルは、JSON に残した生成の設定から作る。"""
    results = copy_results(tmp_path)

    def change(d: dict[str, Any]) -> None:
        d["generation"]["strategy"] = strategy

    edit(results / "kv_cache.json", change)
    d = json.loads((results / "kv_cache.json").read_text(encoding="utf-8"))
    assert f"（{label}）" in report.kv_generation_label(d)


def test_comparisons_record_the_method_and_the_output_check() -> None:
    """速さを比べる計測はすべて、交互に測った比の範囲と一致の確認を残す。"""
    for name in [
        "kv_cache.json",
        "attention.json",
        "char_gpt.json",
        "bpe.json",
        "quantization.json",
        "compile.json",
    ]:
        d = json.loads((RESULTS / name).read_text(encoding="utf-8"))
        assert "交互に測り" in d["method"], name
        checks = d.get("checks") or [
            c for case in d["cases"] for c in case["checks"]
        ]
        assert checks and all(c["passed"] for c in checks), name
        env = d["environment"]
        assert env["threads"] >= 1 and "commit" in env, name


@pytest.mark.parametrize(
    ("seconds", "exact", "verdict"),
    [
        (100.0, 0.995, "どちらも達成"),
        (301.0, 0.995, "時間は届かず"),
        (100.0, 0.98, "一致率は届かず"),
        (301.0, 0.98, "時間・一致率は届かず"),
    ],
)
def test_task_row_says_whether_the_targets_were_met(
    seconds: float, exact: float, verdict: str
) -> None:
    task = {
        "config": {"max_level": 3, "n_train": 40000},
        "train_seconds": seconds,
        "steps": 3500,
        "test_exact_match": exact,
        "general_exact_match": 0.1,
        "time_limit_seconds": 300,
        "exact_match_target": 0.99,
    }
    [(_, text)] = report._tasks({"tasks": {"rpn": task}})
    assert text.endswith(f"（目標: 5 分以内・99% 以上。{verdict}）")
