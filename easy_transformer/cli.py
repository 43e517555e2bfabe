"""コマンドライン: ``python -m easy_transformer <コマンド> ...``。

本書の実験（seq2seq_experiment.py と lm_experiment.py）を、コードを
書かずに試すための入口。

    python -m easy_transformer train-task rpn
    python -m easy_transformer train-lm --minilang
    python -m easy_transformer generate --checkpoint runs/rpn/model.pt \\
        --prompt "(x-2)*3"

引数の誤り、無いファイル、壊れたチェックポイントには、直し方の分かる
1 行のメッセージを出して、0 でない終了コードで終わる（トレースバック
は見せない。環境変数 EASY_TRANSFORMER_DEBUG=1 で見せる）。torch の
読み込みには数秒かかるので、引数を確かめ終わるまでは読み込まない。
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from easy_transformer.lm_experiment import LMResult
    from easy_transformer.tokenizer import Tokenizer

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
# 日本語で話す argparse
# ---------------------------------------------------------------------

# argparse の英語のエラーメッセージ（Python 3.10〜3.13）と、その訳
_MESSAGES: list[tuple[str, Callable[[re.Match[str]], str]]] = [
    (
        r"the following arguments are required: (.+)",
        lambda m: f"次の引数が要ります: {m[1]}",
    ),
    (
        r"one of the arguments (.+) is required",
        lambda m: f"{m[1]} のどれか 1 つを指定してください",
    ),
    (
        r"unrecognized arguments: (.+)",
        lambda m: f"知らない引数です: {m[1]}",
    ),
    (
        r"argument (.+?): invalid choice: (.+?) \(choose from (.+)\)",
        lambda m: (
            f"{m[1]} に {m[2]} は選べません"
            f"（選べるもの: {m[3].replace(chr(39), '')}）"
        ),
    ),
    (
        r"argument (.+?): expected one argument",
        lambda m: f"{m[1]} には値を 1 つ続けてください",
    ),
    (
        r"argument (.+?): not allowed with argument (.+)",
        lambda m: f"{m[1]} と {m[2]} は一緒に使えません",
    ),
    (
        r"argument (.+?): invalid (\w+) value: (.+)",
        lambda m: f"{m[1]} の値 {m[3]} は読めません（{m[2]} が要ります）",
    ),
    (
        r"ambiguous option: (.+?) could match (.+)",
        lambda m: (
            f"{m[1]} は {m[2]} のどれとも取れます。略さずに書いてください"
        ),
    ),
    # 自前の型の関数（_positive_int など）が出す日本語のメッセージ
    (r"argument (.+?): (.+)", lambda m: f"{m[1]}: {m[2]}"),
]


def _translate(message: str) -> str:
    for pattern, render in _MESSAGES:
        m = re.fullmatch(pattern, message, flags=re.DOTALL)
        if m:
            return render(m)
    return message


def _display_width(text: str) -> int:
    """端末での表示の幅。全角の文字は 2 桁と数える。"""
    return sum(
        2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text
    )


# 行頭に置かない約物（禁則）。前の行に追い出す
_NO_LINE_START = "、。，．）」』："


def _wrap(text: str, width: int) -> list[str]:
    """表示の幅で折り返す。英数字の語は途中で切らない。

    argparse は 1 文字を 1 桁と数えて折り返すので、日本語の説明は
    端末の幅の 2 倍近くまで伸びてしまう。
    """
    # 単位: 英数字の語、空白、それ以外の 1 文字。開き括弧は行末に
    # 残さないよう、次の単位とひとまとめにする
    units = re.findall(r"[（「『]*(?:[!-~]+| +|.)", text)
    lines: list[str] = []
    line = ""
    for unit in units:
        fits = _display_width(line + unit.rstrip()) <= width
        if fits or not line.strip() or unit[0] in _NO_LINE_START:
            line += unit
            continue
        lines.append(line.rstrip())
        line = "" if unit.isspace() else unit
    if line.strip():
        lines.append(line.rstrip())
    return lines


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """日本語の幅で折り返し、「usage:」を「使い方:」にする。

    説明（description と epilog）は、書いた改行を保ったまま、長すぎる
    行だけを折り返す。
    """

    def __init__(self, prog: str) -> None:
        # 長いオプション名でも説明が同じ行に収まるように幅を広げる
        super().__init__(prog, max_help_position=30)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return _wrap(" ".join(text.split()), width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for line in text.splitlines():
            body = line.lstrip(" ")
            pad = indent + " " * (len(line) - len(body))
            if body.startswith(PROG):
                out.append(pad + body)  # コマンドの例は折り返さない
                continue
            # 「名前  説明」の形の行は、続きの行を説明の位置にそろえる
            term = re.match(r"\S+ {2,}", body)
            hang = " " * (_display_width(term[0]) if term else 0)
            wrapped = _wrap(body, max(width - len(pad), 20)) or [""]
            out.append(pad + wrapped[0])
            rest = " ".join(wrapped[1:])
            if rest:
                limit = max(width - len(pad) - len(hang), 20)
                out.extend(pad + hang + w for w in _wrap(rest, limit))
        return "\n".join(out)

    def add_usage(
        self,
        usage: str | None,
        actions: Any,
        groups: Any,
        prefix: str | None = None,
    ) -> None:
        # サブコマンドの名前を作るときは prefix="" で呼ばれるので、
        # None のときだけ置き換える
        if prefix is None:
            prefix = "使い方: "
        super().add_usage(usage, actions, groups, prefix)


class JapaneseArgumentParser(argparse.ArgumentParser):
    """見出しとエラーを日本語にした ArgumentParser。

    エラーは「プログラム名: エラー: 内容（--help の案内）」の 1 行を
    標準エラーに書いて、終了コード 2 で終わる。
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self._positionals.title = "位置引数"
        self._optionals.title = "オプション"
        self.add_argument(
            "-h",
            "--help",
            action="help",
            default=argparse.SUPPRESS,
            help="この説明を表示して終わる",
        )

    def error(self, message: str) -> NoReturn:
        text = _one_line(_translate(message))
        self.exit(
            2,
            f"{self.prog}: エラー: {text}（使い方: {self.prog} --help）\n",
        )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(
            f"{value!r} は使えません。1 以上の整数を指定してください"
        )
    return n


def _positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        x = -1.0
    if not x > 0:
        raise argparse.ArgumentTypeError(
            f"{value!r} は使えません。0 より大きい数を指定してください"
        )
    return x


def _probability(value: str) -> float:
    try:
        p = float(value)
    except ValueError:
        p = -1.0
    if not 0 < p <= 1:
        raise argparse.ArgumentTypeError(
            f"{value!r} は使えません。0 より大きく 1 以下の数を指定して"
            "ください（例: 0.9）"
        )
    return p


# ---------------------------------------------------------------------
# 引数の定義
# ---------------------------------------------------------------------

_DESCRIPTION = """\
『作って学ぶ Transformer』の実験を、コードを書かずに試すコマンド。
各コマンドの詳しい説明は「%(prog)s コマンド --help」で見られます。"""

_EPILOG = """\
例:
  %(prog)s train-task rpn
  %(prog)s generate --checkpoint runs/rpn/model.pt --prompt "(x-2)*3"
  %(prog)s train-lm --minilang
  %(prog)s generate --checkpoint runs/minilang/model.pt --num-samples 3
  %(prog)s tokenize --tokenizer bpe --train-file input.txt "Hello"
  %(prog)s info runs/rpn/model.pt"""


def _add_common_training(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--steps",
        type=_positive_int,
        metavar="N",
        help="学習のステップ数（省略すると課題ごとの既定値）",
    )
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
        type=_positive_int,
        metavar="N",
        help="CPU で使うスレッドの数（既定: PyTorch の既定）",
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
        type=_positive_float,
        default=1.0,
        metavar="T",
        help="温度。小さいほど確率の高いトークンに寄る（既定: 1.0）",
    )
    p.add_argument(
        "--top-k",
        type=_positive_int,
        metavar="K",
        help="確率の高い順に K 個だけから選ぶ（既定: 制限なし）",
    )
    p.add_argument(
        "--top-p",
        type=_probability,
        metavar="P",
        help="確率の高い順に足して P に届くまでから選ぶ（既定: 制限なし）",
    )
    p.add_argument(
        "--num-samples",
        type=_positive_int,
        default=default_n,
        metavar="N",
        help=f"生成する列の数（既定: {n_help}）",
    )


def build_parser() -> JapaneseArgumentParser:
    """コマンドライン全体の引数の定義を作る。"""
    parser = JapaneseArgumentParser(
        prog=PROG, description=_DESCRIPTION, epilog=_EPILOG
    )
    sub = parser.add_subparsers(
        dest="command", title="コマンド", metavar="COMMAND"
    )

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
            "result.json（結果）、metrics.jsonl（学習曲線、1 行 1 記録）。"
        ),
        epilog=(
            "例:\n"
            f"  {PROG} train-task rpn\n"
            f"  {PROG} train-task copy --steps 500 --out runs/copy500\n"
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
    p.set_defaults(func=cmd_train_task)

    p = sub.add_parser(
        "train-lm",
        help="GPT（言語モデル）をミニ言語のプログラム集か、テキスト"
        "ファイルで学習する",
        description=(
            "GPT を学習する。--minilang ならミニ言語のプログラム集で学習"
            "し、生成したプログラムのうちパーサが受理する割合を測る。"
            "--data なら任意の UTF-8 のテキストファイルで、文字単位"
            "（char）かバイトレベル BPE（bpe）のトークンで学習する。"
            "テキストの末尾の 10% を検証に使う。\n"
            "学習の後、--temperature・--top-k・--top-p の設定で例を生成"
            "する（ミニ言語では、その設定で生成した全部の行をパーサに"
            "かける）。"
        ),
        epilog=(
            "例:\n"
            f"  {PROG} train-lm --minilang\n"
            f"  {PROG} train-lm --data input.txt\n"
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
        type=_positive_int,
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
    p.set_defaults(func=cmd_train_lm)

    p = sub.add_parser(
        "generate",
        help="学習したモデルに文字列を作らせる",
        description=(
            "train-task か train-lm が書いた model.pt を読み、文字列を"
            "作る。系列変換のモデルは --prompt の入力を貪欲法"
            "（--beam でビームサーチ）で変換する。GPT は --prompt の"
            "続きを、温度・top-k・top-p で加工した分布から引いて作る。"
        ),
        epilog=(
            "例:\n"
            f"  {PROG} generate --checkpoint runs/rpn/model.pt "
            '--prompt "(x-2)*3"\n'
            f"  {PROG} generate --checkpoint runs/minilang/model.pt "
            "--num-samples 3 --temperature 0.8\n"
            f"  {PROG} generate --checkpoint runs/lm-input/model.pt "
            '--prompt "ROMEO:" --top-k 10'
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
        type=_positive_int,
        default=200,
        metavar="N",
        help="作るトークンの最大の数（既定: 200）",
    )
    _add_sampling(p, default_n=1, n_help="1")
    p.add_argument(
        "--greedy",
        action="store_true",
        help="GPT でも引かずに、いちばん確率の高いトークンを選ぶ",
    )
    p.add_argument(
        "--beam",
        type=_positive_int,
        metavar="N",
        help="系列変換で、幅 N のビームサーチを使う",
    )
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
    p.set_defaults(func=cmd_generate)

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
        type=_positive_int,
        default=300,
        metavar="N",
        help="bpe の語彙の大きさ（256 以上。既定: 300）",
    )
    p.set_defaults(func=cmd_tokenize)

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
    p.set_defaults(func=cmd_info)
    return parser


# ---------------------------------------------------------------------
# コマンド
# ---------------------------------------------------------------------


class CommandError(Exception):
    """利用者が直せる誤り。メッセージをそのまま 1 行で見せる。"""


def _setup_torch(device: str, threads: int | None) -> str:
    """スレッドの数を決め、デバイスの指定を確かめて返す。"""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    if device == "auto":
        return device
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise CommandError(
            f"デバイス {device!r} は知りません。auto、cpu、cuda、cuda:1、"
            "mps のように指定してください。"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CommandError(
            "CUDA の GPU が見つかりません。--device cpu にしてください。"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise CommandError(
            "MPS（Apple の GPU）が使えません。--device cpu にしてください。"
        )
    return device


def _percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _saved_files(out: Path) -> str:
    from easy_transformer._experiment import METRICS_FILE, RESULT_FILE
    from easy_transformer.model_io import MODEL_FILE

    return f"保存先: {out}（{MODEL_FILE}、{RESULT_FILE}、{METRICS_FILE}）"


def cmd_train_task(args: argparse.Namespace) -> int:
    device = _setup_torch(args.device, args.threads)
    from easy_transformer import seq2seq_experiment as ex

    overrides = {} if args.steps is None else {"max_steps": args.steps}
    config = ex.seq2seq_config(args.task, tiny=args.tiny, **overrides)
    out = args.out or Path("runs") / args.task
    print(
        f"課題 {args.task} のデータを作り、{config.max_steps} ステップ"
        "学習します。",
        file=sys.stderr,
    )
    r = ex.train_seq2seq(
        args.task,
        config=config,
        seed=args.seed,
        out_dir=out,
        device=device,
        progress=not args.no_progress,
    )
    lo, hi = config.max_level + 1, config.max_level + config.general_levels
    print(f"課題: {args.task} — {TASK_DESCRIPTIONS[args.task]}")
    print(
        f"学習: {r.steps} ステップ、{r.train_seconds:.1f} 秒"
        f"（パラメータ {r.n_params:,} 個）"
    )
    if r.val_loss is not None:
        print(f"検証の損失: {r.val_loss:.4f}")
    print(
        f"テストの完全一致率: {_percent(r.test_exact_match)}"
        f"（レベル 1〜{config.max_level}、{config.n_test} 例）"
    )
    print(
        f"汎化テストの完全一致率: {_percent(r.general_exact_match)}"
        f"（より高いレベル {lo}〜{hi}、{config.n_general} 例）"
    )
    print("例:")
    for e in r.examples:
        mark = "○" if e["prediction"] == e["target"] else "×"
        print(
            f"  {mark} 入力 {e['input']}  正解 {e['target']}  "
            f"予測 {e['prediction']}"
        )
    print(_saved_files(out))
    return 0


def _read_text(path: Path, what: str) -> str:
    """テキストファイルを読む。読めなければ直し方の分かる誤りにする。"""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(
            f"{what} {path} がありません。パスを確かめてください。"
        ) from None
    except IsADirectoryError:
        raise CommandError(
            f"{path} はフォルダです。{what}のファイルを指定してください。"
        ) from None
    except UnicodeDecodeError:
        raise CommandError(
            f"{path} は UTF-8 のテキストとして読めません。UTF-8 で保存"
            "したテキストファイルを指定してください。"
        ) from None


def cmd_train_lm(args: argparse.Namespace) -> int:
    if args.minilang and args.tokenizer is not None:
        raise CommandError(
            "--tokenizer は --data と一緒に使います（--minilang は課題の"
            "文字の語彙を使います）。"
        )
    if args.tokenizer == "bpe" and args.vocab_size < 256:
        raise CommandError(
            f"--vocab-size {args.vocab_size} は小さすぎます。バイトレベル "
            "BPE の語彙は 256 個のバイトから始まるので、256 以上に"
            "してください。"
        )
    if args.data is not None:
        _read_text(args.data, "テキストファイル")  # 先に読めるか確かめる
    device = _setup_torch(args.device, args.threads)
    from dataclasses import replace

    from easy_transformer import lm_experiment as ex

    steps = {} if args.steps is None else {"max_steps": args.steps}
    if args.minilang:
        smp = ex.TINY_SAMPLING if args.tiny else ex.MINILANG_SAMPLING
    else:
        smp = ex.TINY_TEXT_SAMPLING if args.tiny else ex.TEXT_SAMPLING
    sampling = replace(
        smp,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        n_samples=args.num_samples or smp.n_samples,
        seed=args.seed,
    )
    common: dict[str, Any] = {
        "seed": args.seed,
        "device": device,
        "progress": not args.no_progress,
    }
    if args.minilang:
        out = args.out or Path("runs") / "minilang"
        base = (
            ex.TINY_MINILANG_LM_CONFIG
            if args.tiny
            else ex.MINILANG_LM_CONFIG
        )
        print("ミニ言語のプログラム集を作って学習します。", file=sys.stderr)
        r = ex.train_minilang_lm(
            config=replace(base, **steps),
            sampling=sampling,
            out_dir=out,
            **common,
        )
    else:
        out = args.out or Path("runs") / f"lm-{args.data.stem}"
        text_base = ex.TINY_LM_CONFIG if args.tiny else ex.TEXT_LM_CONFIG
        print(f"{args.data} で学習します。", file=sys.stderr)
        r = ex.train_text_lm(
            args.data,
            tokenizer=args.tokenizer or "char",
            vocab_size=args.vocab_size,
            config=replace(text_base, **steps),
            out_dir=out,
            sampling=sampling,
            **common,
        )
    _print_lm_result(r)
    print(_saved_files(out))
    return 0


def _print_lm_result(r: LMResult) -> None:
    print(
        f"データ: {r.name}（トークン {r.tokenizer}、語彙 {r.vocab_size}、"
        f"学習 {r.n_train_tokens:,} トークン）"
    )
    print(
        f"学習: {r.steps} ステップ、{r.train_seconds:.1f} 秒"
        f"（パラメータ {r.n_params:,} 個）"
    )
    if r.val_loss is not None:
        print(f"検証の損失: {r.val_loss:.4f}")
    if r.acceptance_rate is not None and r.sampling is not None:
        s = r.sampling
        print(
            f"パースできたプログラム: {_percent(r.acceptance_rate)}"
            f"（生成した {r.n_generated_programs} 行のうち。温度 "
            f"{s['temperature']}、top-k {s['top_k']}、top-p {s['top_p']}）"
        )
        print(
            f"評価まで成功したプログラム: {_percent(r.run_rate)}"
            "（未定義の変数や 0 除算で止まらない）"
        )
        print(f"受理したうち学習データに無いもの: {_percent(r.novel_rate)}")
    print("生成の例:")
    for text in r.samples[:10]:
        print(f"  {text!r}" if "\n" in text else f"  {text}")


def cmd_generate(args: argparse.Namespace) -> int:
    _setup_torch(args.device, None)
    import torch

    from easy_transformer.gpt import GPT
    from easy_transformer.lm_experiment import generate_text
    from easy_transformer.model_io import load_model
    from easy_transformer.seq2seq_experiment import decode_output, predict
    from easy_transformer.tasks import BOS_ID, EOS_ID

    loaded = load_model(args.checkpoint, args.device)
    if isinstance(loaded.model, GPT):
        prompt = "\n" if args.prompt is None else args.prompt
        texts = generate_text(
            loaded.model,
            loaded.codec,
            prompt,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            do_sample=not args.greedy,
            n_samples=args.num_samples,
            seed=args.seed,
        )
        for i, text in enumerate(texts):
            if len(texts) > 1:
                print(f"--- {i + 1} ---")
            print(prompt + text)
        return 0
    vocab = loaded.codec
    if args.prompt is None:
        raise CommandError(
            "系列変換のモデルには --prompt で入力を渡してください"
            "（例: --prompt '(x-2)*3'）。"
        )
    unknown = sorted(set(args.prompt) - set(vocab.token_to_id))
    if unknown:
        chars = [
            t for t in vocab.id_to_token if t not in vocab.special_tokens
        ]
        raise CommandError(
            f"入力の文字 {''.join(unknown)!r} はこのモデルの語彙に"
            f"ありません（使える文字: {''.join(chars)!r}）。"
        )
    # 位置エンコーディングの表より長い出力は作れない（<bos> のぶん 1 引く）
    max_new = min(args.max_new_tokens, loaded.model.config.max_len - 1)
    if args.beam is None:
        (output,) = predict(
            loaded.model, [args.prompt], vocab, max_new_tokens=max_new
        )
    else:
        src = torch.tensor(vocab.encode(args.prompt))
        ids = loaded.model.beam_search(
            src.to(next(loaded.model.parameters()).device),
            BOS_ID,
            args.beam,
            max_new,
            eos_id=EOS_ID,
        )
        output = decode_output(vocab, ids.tolist())
    print(output)
    return 0


def _load_tokenizer(args: argparse.Namespace) -> tuple[Tokenizer, str]:
    """--tokenizer の指定からトークナイザを作り、(それ, 説明) を返す。"""
    from easy_transformer.lm_experiment import make_text_tokenizer
    from easy_transformer.model_io import load_model
    from easy_transformer.tokenizer import ByteLevelBPETokenizer

    spec = args.tokenizer
    if spec in ("char", "bpe"):
        if spec == "bpe" and args.vocab_size < 256:
            raise CommandError(
                f"--vocab-size {args.vocab_size} は小さすぎます。256 以上に"
                "してください。"
            )
        corpus = (
            args.text
            if args.train_file is None
            else _read_text(args.train_file, "学習用のテキスト")
        )
        if not corpus:
            raise CommandError("語彙を作るテキストが空です。")
        tok = make_text_tokenizer(corpus, spec, vocab_size=args.vocab_size)
        return tok, f"{type(tok).__name__}（語彙 {tok.vocab_size}）"
    path = Path(spec)
    if path.is_dir():
        encoder, merges = path / "encoder.json", path / "vocab.bpe"
        if not (encoder.is_file() and merges.is_file()):
            raise CommandError(
                f"フォルダ {path} に GPT-2 の encoder.json と vocab.bpe が"
                "ありません。"
            )
        gpt2 = ByteLevelBPETokenizer.from_gpt2_files(encoder, merges)
        return gpt2, f"GPT-2 の BPE（語彙 {gpt2.vocab_size}）"
    if not path.is_file():
        raise CommandError(
            f"--tokenizer {spec!r} は char でも bpe でもなく、そういう"
            "ファイルもありません。char、bpe、またはファイルのパスを"
            "指定してください。"
        )
    if path.suffix == ".json":
        codec = _load_tokenizer_json(path)
    else:
        codec = load_model(path).codec
    return (
        codec,
        f"{type(codec).__name__}（語彙 {codec.vocab_size}、{path}）",
    )


def _load_tokenizer_json(path: Path) -> Tokenizer:
    import json

    from easy_transformer.model_io import tokenizer_from_state

    text = _read_text(path, "トークナイザのファイル")
    try:
        kind = json.loads(text).get("type")
    except (json.JSONDecodeError, AttributeError):
        raise CommandError(
            f"{path} は Tokenizer.save で保存した JSON ではありません。"
        ) from None
    return tokenizer_from_state({"type": kind, "json": text})


def cmd_tokenize(args: argparse.Namespace) -> int:
    codec, name = _load_tokenizer(args)
    ids = codec.encode(args.text)
    print(f"トークナイザ: {name}")
    print(f"トークン数: {len(ids)}（文字数 {len(args.text)}）")
    print(f"ID の列: {ids}")
    print(f"{'ID':>6}  トークン")
    for i in ids:
        piece = codec.id_to_token[i]
        text = codec.decode([i])
        shown = repr(piece) if piece == text else f"{piece!r} = {text!r}"
        print(f"{i:>6}  {shown}")
    return 0


def _summarize(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def cmd_info(args: argparse.Namespace) -> int:
    import torch

    from easy_transformer.checkpoint import load_checkpoint

    path: Path = args.checkpoint
    state = load_checkpoint(path)
    size = path.stat().st_size / 1e6
    print(f"ファイル: {path}（{size:.2f} MB）")
    kind = state.get("kind")
    weights = state.get("model")
    if isinstance(weights, dict):
        # 共有した重み（埋め込みと出力層）は同じ記憶領域を指すので、
        # 1 度だけ数える
        unique = {
            t.data_ptr(): t
            for t in weights.values()
            if isinstance(t, torch.Tensor)
        }
        n = sum(t.numel() for t in unique.values())
        print(f"パラメータ数: {n:,}")
    if kind in ("seq2seq", "gpt"):
        name = {
            "seq2seq": "系列変換（エンコーダ・デコーダの Transformer）",
            "gpt": "言語モデル（GPT）",
        }[kind]
        print(f"種類: {name}")
        tok = state.get("tokenizer", {})
        print(f"語彙: {tok.get('type')}")
        sections = [
            ("モデルの設定", state.get("model_config", {})),
            ("学習の記録", state.get("meta", {})),
        ]
    elif "optimizer" in state:
        print(
            "種類: Trainer のチェックポイント（学習を再開するための状態）"
        )
        print(f"ステップ: {state.get('step')}")
        sections = [("学習の設定", state.get("config", {}))]
    else:
        print("種類: 不明（easy_transformer の形式だが、中身を知りません）")
        sections = [
            ("キー", {k: type(v).__name__ for k, v in state.items()})
        ]
    for title, entries in sections:
        print(f"{title}:")
        for key, value in entries.items():
            if isinstance(value, dict):
                print(f"  {key}:")
                for k, v in value.items():
                    print(f"    {k} = {_summarize(v)}")
            else:
                print(f"  {key} = {_summarize(value)}")
    return 0


# ---------------------------------------------------------------------
# 入口
# ---------------------------------------------------------------------


def _describe(error: BaseException) -> str:
    """例外を、利用者向けの 1 行のメッセージにする。"""
    if isinstance(error, FileNotFoundError) and error.filename:
        return f"{error.filename} がありません。パスを確かめてください。"
    if isinstance(error, PermissionError):
        return f"{error.filename} を読み書きする権限がありません。"
    if isinstance(error, IsADirectoryError):
        return (
            f"{error.filename} はフォルダです。ファイルを指定してください。"
        )
    from easy_transformer.checkpoint import CheckpointError

    known = (CommandError, CheckpointError, ValueError, FileNotFoundError)
    if isinstance(error, known):
        return str(error)
    if isinstance(error, OSError):
        return f"{error.filename}: {error.strerror}"
    return (
        f"予期しないエラーです（{type(error).__name__}: {error}）。"
        f"環境変数 {DEBUG_ENV}=1 を付けて実行すると詳細が出ます。"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """コマンドを実行して終了コードを返す（0 が成功）。"""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error(
            "コマンドを指定してください（train-task、train-lm、generate、"
            "tokenize、info）"
        )
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print(f"{PROG}: 中断しました。", file=sys.stderr)
        return 130
    except Exception as e:
        if os.environ.get(DEBUG_ENV):
            raise
        prog = f"{PROG} {args.command}"
        print(f"{prog}: エラー: {_one_line(_describe(e))}", file=sys.stderr)
        return 1
    return code
