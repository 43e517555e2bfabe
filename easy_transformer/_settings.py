"""設定の dataclass を、設定ファイル（TOML）と ``key=value`` で上書きする。

CLI の ``--config 設定.toml`` と ``--set key=value`` の中身。上書きできる
項目は dataclass の項目から自動で作るので、設定に項目を足せば、
そのまま CLI からも変えられる。

    cfg = apply_settings(LMConfig(), toml_file, ["n_layers=6"])

TOML は項目を最上位に並べる（表 ``[...]`` は使わない）::

    n_layers = 6
    d_model = 384
    lr = 3e-4

知らない項目は、近い名前と項目の一覧を示す ``SettingError`` に、型の
違う値は、期待する型を示す ``SettingError`` にする。
"""

from __future__ import annotations

import difflib
import os
import tomllib
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

ConfigT = TypeVar("ConfigT")

# 型の説明（エラーのメッセージに使う）
_TYPE_NAMES = {
    int: "整数",
    float: "数",
    bool: "真偽値（true か false）",
    str: "文字列",
}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class SettingError(ValueError):
    """設定の項目の名前か値が正しくない。メッセージは 1 行。"""


def setting_types(config_cls: type[Any]) -> dict[str, tuple[type, bool]]:
    """項目の名前 → (型, None を許すか)。

    int・float・bool・str（と、それに None を足したもの）の項目だけを扱う。
    """
    hints = typing.get_type_hints(config_cls)
    out: dict[str, tuple[type, bool]] = {}
    for f in fields(config_cls):
        hint = hints[f.name]
        args = typing.get_args(hint)
        optional = isinstance(hint, types.UnionType) and type(None) in args
        base = (
            next(a for a in args if a is not type(None))
            if optional
            else hint
        )
        if base in _TYPE_NAMES:
            out[f.name] = (base, optional)
    return out


def _type_name(kind: type, optional: bool) -> str:
    name = _TYPE_NAMES[kind]
    return f"{name}か none" if optional else name


def _unknown(key: str, known: Iterable[str], where: str) -> SettingError:
    names = sorted(known)
    close = difflib.get_close_matches(key, names, n=3)
    hint = f"もしかして {'、'.join(close)}？ " if close else ""
    return SettingError(
        f"{where}の項目 {key!r} はありません。{hint}"
        f"設定できる項目: {', '.join(names)}"
    )


def parse_value(text: str, kind: type, optional: bool, key: str) -> Any:
    """--set の値の文字列を、項目の型の値にする。"""
    if optional and text.lower() in ("none", "null"):
        return None
    try:
        if kind is bool:
            if text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            raise ValueError(text)
        return kind(text)
    except ValueError:
        raise SettingError(
            f"{key} の値 {text!r} は読めません。"
            f"{_type_name(kind, optional)}を指定してください"
            f"（例: --set {key}={_example(kind)}）。"
        ) from None


def _example(kind: type) -> str:
    return {int: "6", float: "0.001", bool: "true", str: "abc"}[kind]


def check_value(value: Any, kind: type, optional: bool, key: str) -> Any:
    """TOML の値が項目の型に合うか確かめる。

    整数は float の項目にも書ける（``lr = 1`` は 1.0）。
    """
    if value is None and optional:
        return None
    is_bool = isinstance(value, bool)
    if kind is float and isinstance(value, int) and not is_bool:
        return float(value)
    ok = isinstance(value, kind) and (kind is bool or not is_bool)
    if not ok:
        raise SettingError(
            f"{key} の値 {value!r} は{_value_kind(value)}です。"
            f"{_type_name(kind, optional)}を書いてください"
            f"（例: {key} = {_example(kind)}）。"
        )
    return value


def _value_kind(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """設定ファイルを読む。読めなければ SettingError。"""
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise SettingError(
            f"設定ファイル {p} がありません。パスを確かめてください。"
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise SettingError(
            f"設定ファイル {p} は TOML として読めません（{e}）。"
        ) from None
    tables = [k for k, v in data.items() if isinstance(v, dict)]
    if tables:
        raise SettingError(
            f"設定ファイル {p} の表 [{tables[0]}] は使えません。"
            "項目は表に入れずに、最上位に「名前 = 値」で並べてください。"
        )
    return data


def parse_assignments(items: Sequence[str]) -> list[tuple[str, str]]:
    """``key=value`` の並びを (key, value) の並びにする。"""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SettingError(
                f"--set {item!r} は読めません。--set key=value の形で"
                "書いてください（例: --set n_layers=6）。"
            )
        pairs.append((key.strip(), value.strip()))
    return pairs


def apply_settings(
    config: ConfigT,
    file_values: dict[str, Any] | None = None,
    assignments: Sequence[tuple[str, str]] = (),
    *,
    file_label: str = "設定ファイル",
) -> ConfigT:
    """config を、設定ファイルの値、assignments の順に上書きして返す。

    後から当てたものが勝つ（既定 < 設定ファイル < --set）。
    """
    if not is_dataclass(config) or isinstance(config, type):
        raise TypeError("config は dataclass のインスタンスにしてください")
    known = setting_types(type(config))
    changes: dict[str, Any] = {}
    for key, value in (file_values or {}).items():
        if key not in known:
            raise _unknown(key, known, f"{file_label} ")
        try:
            changes[key] = check_value(value, *known[key], key)
        except SettingError as e:
            raise SettingError(f"{file_label}の {e}") from None
    for key, text in assignments:
        if key not in known:
            raise _unknown(key, known, "--set ")
        changes[key] = parse_value(text, *known[key], key)
    return replace(config, **changes)
