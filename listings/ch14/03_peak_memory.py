"""第14章: 注意の計算 1 回が、メモリをどれだけ余計に使うかを測る。

新しい子プロセスで入力を作り、注意を 1 回だけ計算して、その前後の
最大常駐メモリ（peak resident set size）の差を返す。
最大常駐メモリは、プロセスがそれまでに使った物理メモリの最大値で、
Linux では /proc/self/status の VmHWM（high water mark）の行に出る。
測る直前に /proc/self/clear_refs へ "5" を書いて、最大値を今の使用量
まで下げておく（Linux 4.0 以降）。

>>> mib = peak_extra_mib("naive", n=512, batch_heads=2, d=16)
>>> 2 * 512 * 512 * 4 / 2**20  # スコア行列 1 枚の大きさ（MiB）
2.0
>>> mib >= 2.0
True
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# listings を import できるように、子プロセスはリポジトリのルートで動かす
ROOT = Path(__file__).resolve().parents[2]

# 子プロセスで実行するコード。{...} の所を埋めてから渡す。
CHILD = """
import importlib, re, torch
import torch.nn.functional as F
torch.set_num_threads(1)
ta = importlib.import_module("listings.ch14.02_tiled_attention")
fns = {{
    "naive": ta.naive_attention,
    "tiled": lambda q, k, v: ta.tiled_attention(q, k, v, {block}),
    "sdpa": F.scaled_dot_product_attention,
}}
fn = fns["{method}"]

def peak_kib():
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\\s+(\\d+)", f.read()).group(1))

shape = (1, {batch_heads}, {n}, {d})  # (batch, heads, seq, d)
q, k, v = (torch.randn(shape) for _ in range(3))
with torch.no_grad():
    # 初回の呼び出しだけにかかる準備を、測る前に済ませる
    fn(q[..., :8, :], k[..., :8, :], v[..., :8, :])
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # 最大値を今の使用量まで下げる
    before = peak_kib()
    out = fn(q, k, v)
    after = peak_kib()
print((after - before) / 1024)
"""


def peak_extra_mib(
    method: str,
    n: int,
    batch_heads: int = 4,
    d: int = 64,
    block: int = 128,
) -> float:
    """method（naive・tiled・sdpa）で長さ n の注意を 1 回計算したとき、
    最大常駐メモリが何 MiB 増えたか。入力 q・k・v の分は含まない。
    """
    code = CHILD.format(
        method=method, n=n, batch_heads=batch_heads, d=d, block=block
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return float(result.stdout.strip().splitlines()[-1])
