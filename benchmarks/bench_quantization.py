"""int8 の重み量子化の効果を測る: 大きさ・出力の差・CPU の推論時間。

元の float32 のモデル、自前の int8（`quantize_linear_layers`）、
PyTorch の動的量子化（`torch_ao_quantize_dynamic`）の 3 つを、
同じ実行の中で同じ入力に対して比べる。時間を測る前に、自前の int8 の
出力が「逆量子化した重みを入れた float32 のモデル」の出力と一致する
こと（量子化した重みで正しく計算していること）と、2 つの int8 の
出力の float32 からの相対誤差が 5% 未満であることを確かめる。時間は
3 つを交互に測り（回ごとに順番を入れ替える）、回ごとの CPU 時間の
float32 との比の中央値と範囲を見る。スレッド数は `--threads`（既定 1）。

    .venv/bin/python benchmarks/bench_quantization.py [--threads 1]

結果は表で表示し、`benchmarks/results/quantization.json` に書く。
"""

from __future__ import annotations

import argparse
import copy
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from _common import (
    RESULTS,
    MismatchError,
    add_threads_argument,
    alternate,
    check_close,
    environment,
    set_threads,
    write_json,
)
from torch import Tensor, nn

from easy_transformer.quantization import (
    QuantizedLinear,
    model_size_bytes,
    output_error,
    quantize_linear_layers,
    torch_ao_quantize_dynamic,
)

OUT = RESULTS / "quantization.json"
MAX_RELATIVE_ERROR = 0.05


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


def dequantized_reference(model: nn.Module, own: nn.Module) -> nn.Module:
    """own で int8 にした層だけ、逆量子化した重みに替えた float のモデル。

    自前の int8 の層は、forward で重みを float に戻して掛けるので、
    このモデルとほぼ同じ出力になるはず（違えば量子化の実装の誤り）。
    """
    ref = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, module in own.named_modules():
            if isinstance(module, QuantizedLinear):
                ref.get_submodule(name).weight.copy_(module.weight)
    return ref


def run_case(
    model: nn.Module, x: Tensor, rounds: int
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], list[str]]:
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
        outputs = {name: m(x) for name, m in variants.items()}
        dequant = dequantized_reference(model, own)(x)
    checks = [
        check_close(
            "自前の int8 と、逆量子化した重みの float32 モデル",
            outputs["own_int8"],
            dequant,
        )
    ]
    errors = {
        name: output_error(outputs["float32"], out)
        for name, out in outputs.items()
    }
    for name in ["own_int8", "torch_ao_dynamic"]:
        if errors[name].relative >= MAX_RELATIVE_ERROR:
            raise MismatchError(
                f"{name} の相対誤差 {errors[name].relative:.3f} が"
                f" {MAX_RELATIVE_ERROR} 以上です"
            )
        checks.append(
            {
                "what": f"{name} の float32 からの相対誤差 < "
                f"{MAX_RELATIVE_ERROR}",
                "passed": True,
                "relative": errors[name].relative,
            }
        )

    def infer(m: nn.Module) -> Any:
        def run() -> None:
            with torch.inference_mode():
                m(x)

        return run

    timings = alternate(
        {name: infer(m) for name, m in variants.items()}, rounds, warmup=3
    )
    results: dict[str, dict[str, Any]] = {}
    for name, m in variants.items():
        results[name] = {
            "size": asdict(model_size_bytes(m)),
            "error": asdict(errors[name]),
            "time_ms_median": timings.median(name) * 1e3,
            "time_ratio_to_float32": timings.ratio(name, "float32"),
        }
    return results, checks, messages


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
            f"{r['time_ratio_to_float32']['median']:>6.2f}"
        )
    print(
        "（state_dict B: テンソルのバイト数、saved B: torch.save の大きさ、"
        "ratio: float32 との比、\n  max_abs / rel_err: float32 の出力との"
        "最大絶対誤差 / 相対誤差、ms: 1 回の推論の CPU 時間の中央値、\n"
        "  最後の ratio: 回ごとの CPU 時間の float32 との比の中央値）"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="小さなモデルで手早く測る"
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=OUT)
    add_threads_argument(parser)
    args = parser.parse_args()
    set_threads(args.threads)

    report: dict[str, Any] = {
        "description": "int8 の重み量子化: 大きさ・出力の誤差・推論時間",
        "method": "交互に測り、回ごとの CPU 時間の float32 との比の中央値と"
        "範囲",
        "rounds": args.rounds,
        "quantized_engine": torch.backends.quantized.engine,
        "cases": [],
    }
    warned: set[str] = set()
    for name, config, model, x in build_cases(args.quick):
        results, checks, messages = run_case(model, x, args.rounds)
        print_table(name, results)
        report["cases"].append(
            {
                "name": name,
                "config": config,
                "checks": checks,
                "results": results,
            }
        )
        # C++ 側の警告は 1 プロセスに 1 回しか出ないので、全体で集める
        warned.update(messages)
    report["torch_ao_warnings"] = sorted(warned)
    report["environment"] = environment()
    print("\ntorch.ao の動的量子化で出た警告:")
    for message in report["torch_ao_warnings"]:
        print(f"  {message}")
    write_json(args.out, report)
    print(f"\n{args.out} に書いた")


if __name__ == "__main__":
    main()
