"""コマンドラインの引数の定義（python -m easy_transformer の各コマンド）。

引数を並べるだけのモジュール。コマンドの中身は cli.py にある。
torch を読み込まないので、``--help`` と引数の誤りはすぐに返せる。
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from easy_transformer._argparse_ja import (
    JapaneseArgumentParser,
    positive_float,
    positive_int,
    probability,
)

PROG = "python -m easy_transformer"
DEBUG_ENV = "EASY_TRANSFORMER_DEBUG"

# seq2seq_experiment.TASK_CONFIGS と同じ並び（torch を読まずに選択肢を示す）
TASK_DESCRIPTIONS = {
    "copy": "数字の列をそのまま写す（3141 → 3141）",
    "reverse": "数字の列を逆順にする（3141 → 1413）",
    "sort": "数字の列を小さい順に並べる（3141 → 1134）",
    "rpn": "中置記法の式を逆ポーランド記法にする（(x-2)*3 → x 2 - 3 *）",
    "eval": "式の値を求める（(7-2)*3 → 15）",
}


# ---------------------------------------------------------------------
# 引数の定義（コマンドごとに add_<コマンド>_parser）
# ---------------------------------------------------------------------

_DESCRIPTION = """\
『作って学ぶ Transformer』の実験を、コードを書かずに試すコマンド。
各コマンドの詳しい説明は「%(prog)s コマンド --help」で見られます。"""

_EPILOG = """\
例:
  %(prog)s train-task rpn
  %(prog)s generate --checkpoint runs/rpn/model.pt --prompt "(x-2)*3"
  %(prog)s train-lm --minilang
  %(prog)s train-lm --data input.txt --set n_layers=6 --set d_model=384
  %(prog)s generate --checkpoint runs/minilang/model.pt --num-samples 3
  %(prog)s tokenize --tokenizer bpe --train-file input.txt "Hello"
  %(prog)s info runs/rpn/model.pt"""

_SETTINGS_HELP = """\
設定（モデルの大きさと学習）の変え方:
  --config 設定.toml     TOML のファイルの「名前 = 値」で変える
  --set 名前=値          1 項目を変える（何度でも書ける）
後に書いたものが勝つ: 既定 < --config < --steps < --set。
名前は設定の dataclass の項目（%(config)s）。
知らない名前を書くと、近い名前と項目の一覧を示します。"""


def _add_settings(p: argparse.ArgumentParser) -> None:
    """--config、--set、--steps（設定の dataclass の上書き）。"""
    p.add_argument(
        "--config",
        type=Path,
        metavar="TOML",
        help="設定ファイル（TOML）。項目は --set と同じ名前",
    )
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="設定の項目を 1 つ変える（例: --set n_layers=6）。"
        "何度でも書ける",
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        metavar="N",
        help="学習のステップ数（--set max_steps=N と同じ）",
    )


def _add_common_training(p: argparse.ArgumentParser) -> None:
    _add_settings(p)
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="乱数の種。データとモデルの初期値が決まる（既定: 0）",
    )
    p.add_argument(
        "--device",
        default="auto",
        metavar="DEV",
        help="auto、cpu、cuda、cuda:1、mps など（既定: auto。GPU が"
        "あれば使う）",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="CPU で使うスレッドの数（既定: PyTorch の既定）",
    )
    resume = p.add_mutually_exclusive_group()
    resume.add_argument(
        "--resume",
        action="store_true",
        help="出力先の途中経過（checkpoint.pt）から学習を続ける",
    )
    resume.add_argument(
        "--overwrite",
        action="store_true",
        help="出力先に途中経過があっても、最初から学習し直す",
    )
    p.add_argument(
        "--tiny",
        action="store_true",
        help="動作確認用の極小の設定で数秒だけ学習する（何も覚えない）",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="進捗バーを出さない",
    )


def _add_sampling(
    p: argparse.ArgumentParser, *, default_n: int | None, n_help: str
) -> None:
    p.add_argument(
        "--temperature",
        type=positive_float,
        default=1.0,
        metavar="T",
        help="温度。小さいほど確率の高いトークンに寄る（既定: 1.0）",
    )
    p.add_argument(
        "--top-k",
        type=positive_int,
        metavar="K",
        help="確率の高い順に K 個だけから選ぶ（既定: 制限なし）",
    )
    p.add_argument(
        "--top-p",
        type=probability,
        metavar="P",
        help="確率の高い順に足して P に届くまでから選ぶ（既定: 制限なし）",
    )
    p.add_argument(
        "--num-samples",
        type=positive_int,
        default=default_n,
        metavar="N",
        help=f"生成する列の数（既定: {n_help}）",
    )


def add_train_task_parser(sub: Any) -> None:
    """train-task: 系列変換の課題でエンコーダ・デコーダを学習する。"""
    tasks = "\n".join(
        f"  {name:<8} {text}" for name, text in TASK_DESCRIPTIONS.items()
    )
    p = sub.add_parser(
        "train-task",
        help="系列変換の課題（コピー・反転・ソート・逆ポーランド記法・"
        "式の値）でエンコーダ・デコーダを学習する",
        description=(
            "系列変換の課題のデータを作り、エンコーダ・デコーダの "
            "Transformer を学習して、テストの完全一致率（出力が正解と "
            "1 文字も違わない割合）を測る。\n\n課題:\n" + tasks + "\n\n"
            "結果は --out のフォルダに書く: model.pt（モデル）、"
            "result.json（結果）、metrics.jsonl（学習曲線、1 行 1 記録）、"
            "checkpoint.pt（途中経過。--resume で続ける）。\n\n"
            + _SETTINGS_HELP
            % {"config": "Seq2SeqConfig"}
        ),
        epilog=(
            "例:\n"
            f"  {PROG} train-task rpn\n"
            f"  {PROG} train-task copy --steps 500 --out runs/copy500\n"
            f"  {PROG} train-task rpn --set d_model=128 --set n_layers=3\n"
            f"  {PROG} train-task rpn --resume   # 止めたところから続ける\n"
            f"  {PROG} train-task sort --tiny   # 数秒の動作確認"
        ),
    )
    p.add_argument(
        "task",
        choices=list(TASK_DESCRIPTIONS),
        metavar="TASK",
        help="課題: " + "、".join(TASK_DESCRIPTIONS),
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="結果を書くフォルダ（既定: runs/課題の名前）",
    )
    _add_common_training(p)


_TRAIN_LM_DESCRIPTION = (
    "GPT を学習する。--minilang ならミニ言語のプログラム集で学習"
    "し、生成したプログラムのうちパーサが受理する割合を測る。"
    "--data なら任意の UTF-8 のテキストファイルで、文字単位"
    "（char）かバイトレベル BPE（bpe）のトークンで学習する。"
    "テキストの末尾の 10% を検証に使う。\n"
    "学習の後、--temperature・--top-k・--top-p の設定で例を生成"
    "する（ミニ言語では、その設定で生成した全部の行をパーサに"
    "かける）。\n\n"
    + _SETTINGS_HELP
    % {"config": "--data は LMConfig、--minilang は MiniLangLMConfig"}
)


def add_train_lm_parser(sub: Any) -> None:
    """train-lm: GPT を学習する。"""
    p = sub.add_parser(
        "train-lm",
        help="GPT（言語モデル）をミニ言語のプログラム集か、テキスト"
        "ファイルで学習する",
        description=_TRAIN_LM_DESCRIPTION,
        epilog=(
            "例:\n"
            f"  {PROG} train-lm --minilang\n"
            f"  {PROG} train-lm --data input.txt\n"
            f"  {PROG} train-lm --data input.txt --set n_layers=6 "
            "--set d_model=384\n"
            f"  {PROG} train-lm --data input.txt --config big.toml\n"
            f"  {PROG} train-lm --data input.txt --tokenizer bpe "
            "--vocab-size 512"
        ),
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data",
        type=Path,
        metavar="PATH",
        help="学習に使う UTF-8 のテキストファイル",
    )
    source.add_argument(
        "--minilang",
        action="store_true",
        help="ミニ言語のプログラム集を作って学習する",
    )
    p.add_argument(
        "--tokenizer",
        choices=["char", "bpe"],
        help="--data のトークンの単位: char（1 文字）か bpe（既定: char）",
    )
    p.add_argument(
        "--vocab-size",
        type=positive_int,
        default=512,
        metavar="N",
        help="bpe の語彙の大きさ（256 以上。既定: 512）",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="結果を書くフォルダ（既定: runs/minilang か "
        "runs/lm-ファイル名）",
    )
    _add_common_training(p)
    _add_sampling(p, default_n=None, n_help="ミニ言語は 64、テキストは 1")


def add_generate_parser(sub: Any) -> None:
    """generate: 学習したモデルに文字列を作らせる。"""
    p = sub.add_parser(
        "generate",
        help="学習したモデルに文字列を作らせる",
        description=(
            "train-task か train-lm が書いた model.pt を読み、文字列を"
            "作る。系列変換のモデルは --prompt の入力を貪欲法"
            "（--beam でビームサーチ）で変換する。GPT は --prompt の"
            "続きを、温度・top-k・top-p・繰り返しペナルティで加工した"
            "分布から引いて作り、--stop の文字列が出たらその手前で切る。"
        ),
        epilog=(
            "例:\n"
            f"  {PROG} generate --checkpoint runs/rpn/model.pt "
            '--prompt "(x-2)*3"\n'
            f"  {PROG} generate --checkpoint runs/minilang/model.pt "
            "--num-samples 3 --temperature 0.8\n"
            f"  {PROG} generate --checkpoint runs/lm-input/model.pt "
            '--prompt "ROMEO:" --top-k 10 --repetition-penalty 1.3 '
            '--stop "\\n\\n"'
        ),
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        metavar="PATH",
        help="モデルのファイル（train-task か train-lm が書いた model.pt）",
    )
    p.add_argument(
        "--prompt",
        metavar="TEXT",
        help="系列変換なら入力、GPT なら書き出し（GPT では省略すると改行）",
    )
    p.add_argument(
        "--max-new-tokens",
        type=positive_int,
        default=200,
        metavar="N",
        help="作るトークンの最大の数（既定: 200）",
    )
    _add_sampling(p, default_n=1, n_help="1")
    _add_generation_controls(p)
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="サンプリングの乱数の種（既定: 0）",
    )
    p.add_argument(
        "--device", default="cpu", metavar="DEV", help="既定: cpu"
    )


def _add_generation_controls(p: argparse.ArgumentParser) -> None:
    """generate の、引き方の加工と止め方（--repetition-penalty など）。"""
    p.add_argument(
        "--repetition-penalty",
        type=positive_float,
        default=1.0,
        metavar="R",
        help="GPT で、文脈に出たトークンを選びにくくする強さ。1 で"
        "何もしない、1.2〜1.5 くらいで繰り返しが減る（既定: 1.0）",
    )
    p.add_argument(
        "--stop",
        action="append",
        default=[],
        metavar="TEXT",
        help="GPT で、この文字列が出たらその手前で切る。何度でも書ける"
        "（\\n は改行、\\t はタブ）",
    )
    p.add_argument(
        "--greedy",
        action="store_true",
        help="GPT でも引かずに、いちばん確率の高いトークンを選ぶ",
    )
    p.add_argument(
        "--beam",
        type=positive_int,
        metavar="N",
        help="系列変換で、幅 N のビームサーチを使う",
    )


def add_tokenize_parser(sub: Any) -> None:
    """tokenize: テキストをトークンに分けて見せる。"""
    p = sub.add_parser(
        "tokenize",
        help="テキストをトークンに分けて、ID と一緒に見せる",
        description=(
            "テキストをトークンに分け、各トークンの ID と文字列を並べる。"
            "\n--tokenizer には次のどれかを指定する:\n"
            "  char      1 文字 1 トークン（語彙は --train-file か TEXT "
            "から作る）\n"
            "  bpe       バイトレベル BPE（--train-file か TEXT で学習）\n"
            "  ファイル  train-lm の model.pt、Tokenizer.save の JSON、"
            "または GPT-2 の encoder.json と vocab.bpe のあるフォルダ"
        ),
        epilog=(
            "例:\n"
            f'  {PROG} tokenize "x = 1 + 2"\n'
            f"  {PROG} tokenize --tokenizer bpe --train-file input.txt "
            '--vocab-size 300 "To be, or not"\n'
            f"  {PROG} tokenize --tokenizer runs/lm-input/model.pt "
            '"ROMEO:"'
        ),
    )
    p.add_argument("text", metavar="TEXT", help="トークンに分けるテキスト")
    p.add_argument(
        "--tokenizer",
        default="char",
        metavar="SPEC",
        help="char、bpe、またはファイルかフォルダ（既定: char）",
    )
    p.add_argument(
        "--train-file",
        type=Path,
        metavar="PATH",
        help="char と bpe の語彙を作るテキスト（既定: TEXT 自身）",
    )
    p.add_argument(
        "--vocab-size",
        type=positive_int,
        default=300,
        metavar="N",
        help="bpe の語彙の大きさ（256 以上。既定: 300）",
    )


def add_info_parser(sub: Any) -> None:
    """info: チェックポイントの中身を表示する。"""
    p = sub.add_parser(
        "info",
        help="チェックポイント（model.pt など）の中身を表示する",
        description=(
            "チェックポイントを読み、モデルの種類・大きさ・設定・学習の"
            "記録を表示する。train-task と train-lm が書いた model.pt "
            "のほか、Trainer が保存した学習の途中経過も読める。"
        ),
        epilog=f"例:\n  {PROG} info runs/rpn/model.pt",
    )
    p.add_argument("checkpoint", type=Path, metavar="CHECKPOINT")


def build_parser() -> JapaneseArgumentParser:
    """コマンドライン全体の引数の定義を作る。"""
    parser = JapaneseArgumentParser(
        prog=PROG, description=_DESCRIPTION, epilog=_EPILOG
    )
    sub = parser.add_subparsers(
        dest="command", title="コマンド", metavar="COMMAND"
    )
    add_train_task_parser(sub)
    add_train_lm_parser(sub)
    add_generate_parser(sub)
    add_tokenize_parser(sub)
    add_info_parser(sub)
    return parser
