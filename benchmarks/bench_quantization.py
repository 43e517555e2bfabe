"""int8 の重み量子化の効果を測る: 大きさ・出力の差・CPU の推論時間。

元の float32 のモデル、自前の int8（`quantize_linear_layers`）、
PyTorch の動的量子化（`torch_ao_quantize_dynamic`）の 3 つを、
同じ実行の中で同じ入力に対して比べる。時間は環境で大きく変わるので、
絶対値ではなく float32 との比を見る。

    .venv/bin/python benchmarks/bench_quantization.py

結果は表で表示し、`benchmarks/results/quantization.json` に書く。
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from _common import write_json
from torch import Tensor, nn

from easy_transformer.quantization import (
    model_size_bytes,
    output_error,
    quantize_linear_layers,
    torch_ao_quantize_dynamic,
)

RESULTS = Path(__file__).resolve().parent / "results" / "quantization.json"


class TinyEncoder(nn.Module):
    """nn.TransformerEncoder の数層と、語彙への出力層からなる小さなモデル。

    `batch_first=False` にするのは、torch.ao で量子化したモデルが
    `batch_first=True` の推論の高速経路で動かないため
    （`torch_ao_quantize_dynamic` の docstring を参照）。
    3 つとも同じ（高速経路を通らない）計算経路で比べられる。
    """

    def __init__(
        self, d_model: int, nhead: int, d_ff: int, layers: int, vocab: int
    ) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, d_ff, dropout=0.0, batch_first=False
        )
        self.encoder = nn.TransformerEncoder(
            layer, layers, enable_nested_tensor=False
        )
        self.head = nn.Linear(d_model, vocab)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.head(self.encoder(x))
        return out


def build_cases(
    quick: bool,
) -> list[tuple[str, dict[str, int], nn.Module, Tensor]]:
    """（名前, 設定, モデル, 入力）の組を作る。"""
    scale = 2 if quick else 1
    enc = {
        "d_model": 256 // scale,
        "nhead": 4,
        "d_ff": 1024 // scale,
        "layers": 4,
        "vocab": 2000 // scale,
    }
    mlp = {"d_in": 1024 // scale, "d_hidden": 4096 // scale}
    torch.manual_seed(0)
    encoder = TinyEncoder(**enc).eval()
    x_enc = torch.randn(64, 8, enc["d_model"])  # (系列長, バッチ, d_model)
    perceptron = nn.Sequential(
        nn.Linear(mlp["d_in"], mlp["d_hidden"]),
        nn.GELU(),
        nn.Linear(mlp["d_hidden"], mlp["d_in"]),
    ).eval()
    x_mlp = torch.randn(64, mlp["d_in"])
    enc_config = {**enc, "seq_len": 64, "batch": 8}
    mlp_config = {**mlp, "batch": 64}
    return [
        ("transformer_encoder", enc_config, encoder, x_enc),
        ("mlp", mlp_config, perceptron, x_mlp),
    ]


def time_models(
    models: Mapping[str, Callable[[Tensor], Tensor]],
    x: Tensor,
    repeats: int,
    warmup: int = 3,
) -> dict[str, list[float]]:
    """各モデルの 1 回の推論の時間（秒）を `repeats` 回ずつ測る。

    モデルを 1 回ずつ順番に回して測る。1 つずつまとめて測ると、
    途中で CPU の周波数や他のプロセスの負荷が変わったときに、
    その影響が特定のモデルだけに偏るからである。
    """
    with torch.inference_mode():
        for model in models.values():
            for _ in range(warmup):
                model(x)
        times: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(repeats):
            for name, model in models.items():
                start = time.perf_counter()
                model(x)
                times[name].append(time.perf_counter() - start)
    return times


def run_case(
    model: nn.Module, x: Tensor, repeats: int
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    own = quantize_linear_layers(model)
    # 警告は表示したうえで、結果の JSON にも残す
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ao = torch_ao_quantize_dynamic(model)
    messages = sorted(
        {
            f"{w.category.__name__}: {str(w.message).splitlines()[0]}"
            for w in caught
        }
    )
    variants = {"float32": model, "own_int8": own, "torch_ao_dynamic": ao}
    with torch.inference_mode():
        reference = model(x)
        outputs = {name: m(x) for name, m in variants.items()}
    times = time_models(variants, x, repeats)
    base = statistics.median(times["float32"])
    results: dict[str, dict[str, Any]] = {}
    for name, m in variants.items():
        median = statistics.median(times[name])
        results[name] = {
            "size": asdict(model_size_bytes(m)),
            "error": asdict(output_error(reference, outputs[name])),
            "time_ms_median": median * 1e3,
            "time_ms_min": min(times[name]) * 1e3,
            "time_ratio_to_float32": median / base,
        }
    return results, messages


def print_table(name: str, results: dict[str, dict[str, Any]]) -> None:
    """結果を表にする。列名は桁がそろうように ASCII で書く。"""
    base = results["float32"]["size"]
    print(f"\n## {name}")
    print(
        f"{'':18} {'state_dict B':>13} {'ratio':>6} {'saved B':>11} "
        f"{'ratio':>6} {'max_abs':>9} {'rel_err':>9} {'ms':>8} {'ratio':>6}"
    )
    for variant, r in results.items():
        size, err = r["size"], r["error"]
        print(
            f"{variant:18} {size['state_dict_bytes']:>13,} "
            f"{size['state_dict_bytes'] / base['state_dict_bytes']:>6.3f} "
            f"{size['saved_bytes']:>11,} "
            f"{size['saved_bytes'] / base['saved_bytes']:>6.3f} "
            f"{err['max_abs']:>9.2e} {err['relative']:>9.2e} "
            f"{r['time_ms_median']:>8.2f} "
            f"{r['time_ratio_to_float32']:>6.2f}"
        )
    print(
        "（state_dict B: テンソルのバイト数、saved B: torch.save の大きさ、"
        "ratio: float32 との比、\n  max_abs / rel_err: float32 の出力との"
        "最大絶対誤差 / 相対誤差、ms: 1 回の推論の中央値）"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="小さなモデルで手早く測る"
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    report: dict[str, Any] = {
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "threads": torch.get_num_threads(),
            "quantized_engine": torch.backends.quantized.engine,
        },
        "repeats": args.repeats,
        "cases": [],
    }
    warned: set[str] = set()
    for name, config, model, x in build_cases(args.quick):
        results, messages = run_case(model, x, args.repeats)
        print_table(name, results)
        report["cases"].append(
            {"name": name, "config": config, "results": results}
        )
        # C++ 側の警告は 1 プロセスに 1 回しか出ないので、全体で集める
        warned.update(messages)
    report["torch_ao_warnings"] = sorted(warned)
    print("\ntorch.ao の動的量子化で出た警告:")
    for message in report["torch_ao_warnings"]:
        print(f"  {message}")
    write_json(args.out, report)
    print(f"\n{args.out} に書いた")


if __name__ == "__main__":
    main()
