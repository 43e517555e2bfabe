"""ベンチマークのスクリプトに共通の部品: 計測環境の記録と、結果の保存。"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch


def environment() -> dict[str, Any]:
    """結果の JSON に残す計測環境（スレッド数、コア数、版）。"""
    return {
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    """結果を読める形（UTF-8、字下げ付き）の JSON で保存する。"""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    path.write_text(text + "\n", encoding="utf-8")
