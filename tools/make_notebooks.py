"""章の listings から Jupyter ノートブックを作り、実行して結果を保存する。

ノートブックは listings の生成物で、同じコードを 2 か所で保守しない。
各リストについて、見出し（ファイル名と docstring の 1 行目）、リストのコード
（`if __name__ == "__main__":` より前）、docstring の doctest の例（入力を
コードのセルに）を順に並べる。最後にノートブックごとの「動かしてみる」セルを
置く。作ったノートブックは nbclient で上から実行し、どのセルも例外なく
終わることと、doctest の例の出力が docstring に書いた出力と一致することを
確かめる。出力付きのノートブックを dist/notebooks/ に書く（リリースに添付する）。

使い方: python tools/make_notebooks.py [--out dist/notebooks] [--no-execute]
"""

from __future__ import annotations

import argparse
import ast
import doctest
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent

# listings を import できるように、リポジトリのルートを探して sys.path に足す
# （ノートブックを dist/notebooks/ から開いても、リポジトリの中なら動く）
SETUP = """\
import sys
from pathlib import Path

root = Path.cwd().resolve()
while not (root / "listings").is_dir() and root != root.parent:
    root = root.parent
if not (root / "listings").is_dir():
    raise RuntimeError("リポジトリの中でノートブックを開いてください")
sys.path.insert(0, str(root))
import torch

torch.manual_seed(0)
torch.set_num_threads(1)"""


@dataclass
class Notebook:
    name: str
    title: str
    intro: str
    listings: list[str]
    try_it: list[str] = field(default_factory=list)


NOTEBOOKS = [
    Notebook(
        "01_attention_basics",
        "注意機構の基本",
        "第6章の 2 つのリストです。記号表の辞書引きを、すべての項目を類似度で"
        "重み付けして混ぜる「柔らかい辞書引き」に変え、それが縮小付き内積注意"
        "になるところまでを動かします。",
        ["ch06/01_soft_lookup.py", "ch06/02_simple_attention.py"],
        [
            "from easy_transformer.attention import "
            "scaled_dot_product_attention\n\n"
            "q, k, v = torch.randn(3, 2, 4, 8).unbind(0)\n"
            "out, weights = simple_attention(q, k, v)\n"
            "ref, _ = scaled_dot_product_attention(q, k, v)\n"
            "# 本書のパッケージの完成品と同じ値になる\n"
            "torch.testing.assert_close(out, ref)\n"
            "weights.sum(-1)  # 各クエリについて重みの和は 1",
        ],
    ),
    Notebook(
        "02_simple_transformer",
        "簡単な Transformer",
        "第13章のリスト列です。設定の dataclass から始めて、埋め込み、位置、"
        "ブロック、モデル全体、学習ループの順に GPT 型の小さな Transformer を"
        "組み立て、パッケージの完成品と同じ関数を計算することを確かめます。",
        [
            "ch13/01_config.py",
            "ch13/02_embedding.py",
            "ch13/03_position.py",
            "ch13/04_block.py",
            "ch13/05_model.py",
            "ch13/07_compare.py",
        ],
    ),
    Notebook(
        "03_text_generation",
        "テキストの生成",
        "第13章の学習ループで、コピー課題を小さなモデルに学習させ、"
        "貪欲法で 1 トークンずつ出力させます（CPU で 1 分ほど）。",
        ["ch13/06_train.py"],
        [
            "model, history = train(cfg.Config(), steps=400, seed=0)\n"
            'print(f"検証データの完全一致率 {history.val_exact[-1]:.1%}")\n'
            '[copy(model, digits) for digits in ["31415", "2718", "9"]]',
        ],
    ),
]


def split_listing(path: Path) -> tuple[str, str, list[doctest.Example]]:
    """（docstring、docstring の後から __main__ の前までのコード、doctest の例）。"""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    docstring = ast.get_docstring(tree) or ""
    start = tree.body[0].end_lineno or 0 if docstring else 0
    end = len(lines)
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "__name__ == '__main__'",
            '__name__ == "__main__"',
        ):
            end = node.lineno - 1
    code = "\n".join(lines[start:end]).strip("\n")
    examples = doctest.DocTestParser().get_examples(docstring)
    return docstring, code, examples


def build(nb: Notebook) -> tuple[nbformat.NotebookNode, dict[int, str]]:
    """ノートブックと、{セルの番号: doctest の期待する出力}。"""
    cells = [
        new_markdown_cell(
            f"# {nb.title}\n\n{nb.intro}\n\n"
            "このノートブックは `tools/make_notebooks.py` が `listings/` から"
            "作ったものです。リポジトリの中で開いてください。"
        ),
        new_code_cell(SETUP),
    ]
    expected: dict[int, str] = {}
    for rel in nb.listings:
        docstring, code, examples = split_listing(ROOT / "listings" / rel)
        summary = docstring.split("\n\n")[0] if docstring else ""
        cells.append(new_markdown_cell(f"## `listings/{rel}`\n\n{summary}"))
        cells.append(new_code_cell(code))
        for example in examples:
            cell = new_code_cell(example.source.rstrip("\n"))
            if example.exc_msg is not None:
                # 例外を見せる例: nbclient はこの印のあるセルでは止まらない
                cell.metadata["tags"] = ["raises-exception"]
                expected[len(cells)] = example.exc_msg
            elif example.want:
                expected[len(cells)] = example.want
            cells.append(cell)
    if nb.try_it:
        cells.append(new_markdown_cell("## 動かしてみる"))
        cells.extend(new_code_cell(src) for src in nb.try_it)
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook, expected


def outputs_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            parts.append(output.data.get("text/plain", "") + "\n")
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}\n")
    return "".join(parts)


def check_outputs(
    name: str, notebook: nbformat.NotebookNode, expected: dict[int, str]
) -> list[str]:
    checker = doctest.OutputChecker()
    flags = doctest.NORMALIZE_WHITESPACE
    problems = []
    for index, want in expected.items():
        got = outputs_text(notebook.cells[index])
        if not checker.check_output(want, got, flags):
            problems.append(
                f"{name} のセル {index}: 出力が docstring と違う\n"
                f"  期待: {want!r}\n  実際: {got!r}"
            )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "dist" / "notebooks"
    )
    parser.add_argument("--no-execute", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for nb in NOTEBOOKS:
        notebook, expected = build(nb)
        if not args.no_execute:
            NotebookClient(
                notebook,
                timeout=900,
                kernel_name="python3",
                resources={"metadata": {"path": str(ROOT)}},
            ).execute()
            problems += check_outputs(nb.name, notebook, expected)
        path = args.out / f"{nb.name}.ipynb"
        nbformat.write(notebook, path)
        print(f"ノートブック: {path}（{len(notebook.cells)} セル）")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
