"""Web 版の日本語検索（tools/sphinxext/jasearch.py）の切り方を確かめる。

検索語を切る JavaScript 側と Python 側が同じ規則で、検索語の切れ端が
本文の索引の語にすべて含まれなければ、本文にある語が見つからなくなる。
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools" / "sphinxext"))

from jasearch import (  # noqa: E402
    _FETCH_SHIM,
    JS_SPLITTER,
    index_words,
    main_text,
    split_japanese,
)

SAMPLES = [
    "層正規化",
    "注意機構（Attention）の重み",
    "型",
    "nn.TransformerEncoderLayer と d_model",
    "Pre-LN と Post-LN、ReLU・GELU",
    "トークナイザのバイトレベル BPE",
    "x_1 + 3.14 = 々ー",
    "Ünïcödé 語と café",
]

NODE = shutil.which("node")


def js_split(texts: list[str]) -> list[list[str]]:
    assert NODE, "Node.js が要ります（README の依存を参照）"
    script = JS_SPLITTER + (
        "\nconst input = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "\nconsole.log(JSON.stringify(input.map(splitQuery)));"
    )
    out = subprocess.run(
        [NODE, "-e", script],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_python_and_javascript_split_the_same_way() -> None:
    assert js_split(SAMPLES) == [split_japanese(s) for s in SAMPLES]


def test_japanese_is_split_into_overlapping_bigrams() -> None:
    assert split_japanese("残差接続") == ["残差", "差接", "接続"]
    # 1 文字の語はそのまま（索引にも入る）
    assert split_japanese("型") == ["型"]


@pytest.mark.parametrize("word", ["層正規化", "注意機構", "型", "GELU"])
def test_every_word_in_the_text_is_found(word: str) -> None:
    """本文にある語の切れ端は、本文の切れ端にすべて含まれる（取りこぼしが無い）。"""
    text = f"前置き。Pre-LN の{word}を使う。"
    assert set(split_japanese(word)) <= set(index_words(text))


def test_main_text_skips_navigation_and_scripts() -> None:
    page = (
        '<html><body><nav>目次 第1章</nav><main role="main">'
        '<div class="sidebar">脇</div><article class="bd-article">'
        '<h1>題<a class="headerlink" href="#">#</a></h1><p>本文&amp;<br>続き</p>'
        "<script>var x = 1;</script></article></main></body></html>"
    )
    assert main_text(page) == "題本文&続き"
    assert main_text('<div role="main"><p>だけ</p></div>') == "だけ"


def test_search_page_script_is_valid_javascript(tmp_path: Path) -> None:
    assert NODE, "Node.js が要ります（README の依存を参照）"
    script = tmp_path / "shim.js"
    script.write_text(_FETCH_SHIM, encoding="utf-8")
    subprocess.run([NODE, "--check", str(script)], check=True)
