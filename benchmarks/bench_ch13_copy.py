"""第13章: コピー課題の学習の到達点を、計測環境つきで記録する（CPU、数分）。

学習そのものは本文のリスト `listings/ch13/06_train.py` の `main`
（本文の設定、1 スレッド）に任せる。`main` が書いた
`benchmarks/results/ch13_copy.json` に、ほかのベンチマークと同じ計測環境
（コミットと、コミットしていない変更の有無）を足して書き直す。本文の
数値（"book"）は `main` が作ったものをそのまま使う。

    .venv/bin/python benchmarks/bench_ch13_copy.py
"""

from __future__ import annotations

import importlib
import json
import sys

from _common import RESULTS, ROOT, environment, write_json

sys.path.insert(0, str(ROOT))
train = importlib.import_module("listings.ch13.06_train")

OUT = RESULTS / "ch13_copy.json"


def main() -> None:
    train.main()
    record = json.loads(OUT.read_text(encoding="utf-8"))
    record["environment"] = environment()
    write_json(OUT, record)


if __name__ == "__main__":
    main()
