"""日本語で話す argparse: 見出し・エラー・折り返しを日本語にする。

argparse の英語のエラーメッセージ（Python 3.11〜3.13）を正規表現で
訳し、説明は全角の文字を 2 桁と数えて折り返す。引数の型を確かめる
関数（``positive_int`` など）も、日本語のメッセージを出す。
cli.py だけが使う。
"""

from __future__ import annotations

import argparse
import re
import unicodedata
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

Number = TypeVar("Number", int, float)

# argparse の英語のエラーメッセージ（Python 3.11〜3.13）と、その訳
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
    # 自前の型の関数（positive_int など）が出す日本語のメッセージ
    (r"argument (.+?): (.+)", lambda m: f"{m[1]}: {m[2]}"),
]


# この文字列で始まる説明の行はコマンドの例なので、折り返さない
COMMAND_EXAMPLE_PREFIX = "python -m "


def _translate(message: str) -> str:
    for pattern, render in _MESSAGES:
        m = re.fullmatch(pattern, message, flags=re.DOTALL)
        if m:
            return render(m)
    return message


def display_width(text: str) -> int:
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
        fits = display_width(line + unit.rstrip()) <= width
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
            if body.startswith(COMMAND_EXAMPLE_PREFIX):
                out.append(pad + body)  # コマンドの例は折り返さない
                continue
            # 「名前  説明」の形の行は、続きの行を説明の位置にそろえる
            term = re.match(r"\S+ {2,}", body)
            hang = " " * (display_width(term[0]) if term else 0)
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
        text = one_line(_translate(message))
        self.exit(
            2,
            f"{self.prog}: エラー: {text}（使い方: {self.prog} --help）\n",
        )


def one_line(text: str) -> str:
    return " ".join(text.split())


def _bounded(
    kind: type[Number], ok: Callable[[Number], bool], wanted: str
) -> Callable[[str], Number]:
    """文字列を kind に直し、ok を満たさなければ日本語のエラーにする型。

    argparse の type= に渡す。読めない文字列も範囲外と同じ文言にする。
    """

    def convert(value: str) -> Number:
        try:
            x = kind(value)
        except ValueError:
            x = None
        if x is None or not ok(x):
            raise argparse.ArgumentTypeError(
                f"{value!r} は使えません。{wanted}を指定してください"
            )
        return x

    return convert


positive_int = _bounded(int, lambda n: n >= 1, "1 以上の整数")
positive_float = _bounded(float, lambda x: x > 0, "0 より大きい数")
probability = _bounded(
    float, lambda p: 0 < p <= 1, "0 より大きく 1 以下の数（例: 0.9）"
)
