"""構造図（Mermaid）を sphinxcontrib-mermaid で描き、本の図として埋め込む拡張。

原稿には ```` ```{mermaid} ```` で Mermaid のソースを書き、`:caption:`・`:name:`・
`:alt:`・`:width:` を付ける（キャプションと名前があれば図番号が付き、`{numref}` で
参照できる）。ビルド時に `node_modules/.bin/mmdc`（mermaid-cli）で画像にする。
HTML に mermaid.js は読み込まない（CDN を使わず、`file://` でも表示できるように）。

sphinxcontrib-mermaid の指示と描画（`render_mm`）をそのまま使い、次の点だけを足す。

- `:width:`（`{figure}` と同じ。HTML の `style`、LaTeX の `width=`）と、`:alt:` を必須に。
- HTML・EPUB は `<img>` で埋める（拡張の SVG の既定は `<object>` で、代替テキストが
  `alt` にならず、ブラウザの画像の検査にもかからない）。形式は `mermaid_output_format`
  （conf.py で HTML は SVG、EPUB は PNG）。LaTeX は PDF（幅を指定できるように描き直す）。
- 画像のファイル名（Mermaid のソースのハッシュ）に、mmdc の設定ファイルと引数と
  mermaid-cli の版も混ぜる。設定を変えたら描き直され、古い画像が残らない。
"""

from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError
from sphinx.util import logging
from sphinxcontrib.mermaid import (
    Mermaid,
    MermaidError,
    mermaid,
    render_mm,
)

logger = logging.getLogger(__name__)


class BookMermaid(Mermaid):  # type: ignore[misc]
    """`{mermaid}` 指示に `:width:` を足し、`:alt:` の無いものを警告する。"""

    option_spec: ClassVar[dict[str, Any]] = {
        **Mermaid.option_spec,
        "width": directives.length_or_percentage_or_unitless,
    }

    def run(self, **kwargs: Any) -> list[nodes.Node]:
        result: list[nodes.Node] = super().run(**kwargs)
        if "alt" not in self.options:
            result.append(
                self.state_machine.reporter.warning(
                    "構造図（mermaid）に :alt: が無い（代替テキストを書く）",
                    line=self.lineno,
                )
            )
        for top in result:
            if not isinstance(top, nodes.Element):
                continue
            for node in top.findall(mermaid):
                if "width" in self.options:
                    node["width"] = self.options["width"]
        return result


def _fingerprint(cfg: Config) -> str:
    """描画の結果を左右する設定（設定ファイルの中身・引数・mermaid-cli の版）。"""
    digest = hashlib.sha1()
    digest.update(json.dumps(list(cfg.mermaid_params)).encode())
    for arg in cfg.mermaid_params:
        path = Path(arg)
        if path.suffix == ".json" and path.is_file():
            digest.update(path.read_bytes())
    cmd = cfg.mermaid_cmd
    mmdc = Path(cmd if isinstance(cmd, str) else cmd[0])
    pkg = (
        mmdc.parent.parent / "@mermaid-js" / "mermaid-cli" / "package.json"
    )
    if pkg.is_file():
        digest.update(pkg.read_bytes())
    return digest.hexdigest()[:12]


def _render(self: Any, node: nodes.Element, fmt: str) -> str | None:
    """画像を描き、出力先からの相対パスを返す。失敗したら警告して None。"""
    options = {
        **node["options"],
        "book": _fingerprint(self.builder.config),
    }
    try:
        fname, _ = render_mm(self, node["code"], options, fmt)
    except MermaidError as exc:
        logger.warning(f"構造図を描けなかった: {exc}", location=node)
        return None
    return fname  # type: ignore[no-any-return]


def html_visit_mermaid(self: Any, node: nodes.Element) -> None:
    fmt = self.builder.config.mermaid_output_format
    fname = _render(self, node, fmt)
    if fname is not None:
        attrs = {
            "alt": node.get("alt", ""),
            "class": "mermaid",
            "src": fname,
        }
        if "width" in node:
            attrs["style"] = f"width: {node['width']}"
        body = " ".join(
            f'{k}="{html.escape(v, quote=True)}"' for k, v in attrs.items()
        )
        self.body.append(f"<img {body} />\n")
    raise nodes.SkipNode


def latex_visit_mermaid(self: Any, node: nodes.Element) -> None:
    fname = _render(self, node, "pdf")
    if fname is not None:
        opts = ""
        if "width" in node:
            width = self.latex_image_length(node["width"])
            if width:
                opts = f"[width={width}]"
        self.body.append(
            f"\n\\noindent\\sphinxincludegraphics{opts}{{{fname}}}\n"
        )
    raise nodes.SkipNode


def _check_config(app: Sphinx) -> None:
    fmt = app.config.mermaid_output_format
    if fmt not in ("svg", "png"):
        # raw は mermaid.js をブラウザで動かす（既定では CDN から読む）
        raise ConfigError(
            f"mermaid_output_format は svg か png にする（{fmt!r}）"
        )


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinxcontrib.mermaid")
    app.add_directive("mermaid", BookMermaid, override=True)
    app.add_node(
        mermaid,
        override=True,
        html=(html_visit_mermaid, None),
        latex=(latex_visit_mermaid, None),
    )
    app.connect("builder-inited", _check_config)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
