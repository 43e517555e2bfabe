"""原稿と掲載コードの約束を確かめるテスト（CONTRIBUTING.md の「書き方の約束」を機械的に検査する）。"""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

import pytest

# 表示の幅（全角は 2 桁）は CLI の折り返しと同じ数え方
from easy_transformer._argparse_ja import display_width

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
LISTINGS = ROOT / "listings"
FIGURES_SRC = ROOT / "figures_src"

# PDF（B5、\small の等幅）でコードの行が版面に収まる最大の表示幅（全角は 2 と数える）。
# 本文の幅 369.9pt ÷ 等幅 1 文字 4.72pt ≒ 78 から枠と余白の分を引いた値。
MAX_CODE_WIDTH = 76

# 実行されずに検証を逃れてしまう、Python を意味する言語名
PYTHON_ALIASES = {
    "py",
    "py3",
    "python3",
    "pycon",
    "ipython",
    "ipython3",
    "pytb",
    "sage",
}
# 本文で使ってよいコードブロックの言語（python は sybil が実行する）
ALLOWED_LANGUAGES = {
    "python",
    "text",
    "console",
    "bash",
    "toml",
    "yaml",
    "json",
    "make",
    "latex",
    "diff",
}

FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
SKIP = re.compile(r"^%\s*skip:")
SKIP_OK = re.compile(r'^%\s*skip:\s*next\s+"[^"]{4,}"\s*$')
IMAGE_DIRECTIVE = re.compile(
    r"^[`:]{3,}\{(?:figure|image)\}\s+(?P<path>\S+)"
)
MERMAID_DIRECTIVE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{mermaid\}(?P<arg>.*)$"
)
MD_IMAGE = re.compile(r"!\[[^\]]*\]\((?P<path>[^)\s]+)")
LITERALINCLUDE = re.compile(r"^[`:]{3,}\{literalinclude\}\s+(?P<path>\S+)")


def book_files() -> list[Path]:
    return sorted(
        p for p in BOOK.rglob("*.md") if "_generated" not in p.parts
    )


def code_blocks(path: Path) -> list[tuple[int, str, list[str]]]:
    """（開始行、情報文字列、中身の行）の一覧。入れ子のフェンスも数える。"""
    blocks = []
    lines = path.read_text(encoding="utf-8").splitlines()
    stack: list[tuple[str, int, str, list[str]]] = []
    for lineno, line in enumerate(lines, 1):
        m = FENCE.match(line.strip())
        if (
            stack
            and m
            and m.group("fence") == stack[-1][0]
            and not m.group("info").strip()
        ):
            _fence, start, info, body = stack.pop()
            blocks.append((start, info, body))
            continue
        if m and (
            not stack
            or not stack[-1][2].startswith(("python", "text", "console"))
        ):
            stack.append(
                (m.group("fence"), lineno, m.group("info").strip(), [])
            )
            continue
        if stack:
            stack[-1][3].append(line)
    return blocks


def test_book_has_sources() -> None:
    assert (BOOK / "index.md").exists()
    assert len(book_files()) >= 3


@pytest.mark.parametrize(
    "path", book_files(), ids=lambda p: str(p.relative_to(ROOT))
)
def test_no_unverified_python_blocks(path: Path) -> None:
    """python 以外の名前で Python を書き、sybil の検証を逃れたブロックが無いこと。"""
    bad = []
    for start, info, _ in code_blocks(path):
        lang = info.split()[0] if info else ""
        m = re.match(
            r"\{(?:code-block|code|sourcecode|code-cell)\}\s*(\S*)", info
        )
        if m:
            lang = m.group(1)
        if lang.startswith("{"):
            continue  # 指示（note、figure など）
        if lang.lower() in PYTHON_ALIASES or (
            lang and lang not in ALLOWED_LANGUAGES
        ):
            bad.append(f"{path.name}:{start} 言語 {lang!r}")
        if not lang:
            bad.append(
                f"{path.name}:{start} 言語の指定が無い（python か text などを書く）"
            )
    assert not bad, "検証されないコードブロック: " + ", ".join(bad)


@pytest.mark.parametrize(
    "path", book_files(), ids=lambda p: str(p.relative_to(ROOT))
)
def test_skips_have_reasons(path: Path) -> None:
    """`% skip:` は `% skip: next "理由"` の形だけを使い、理由を必ず書く。"""
    bad = [
        f"{path.name}:{n}: {line}"
        for n, line in enumerate(
            path.read_text(encoding="utf-8").splitlines(), 1
        )
        if SKIP.match(line.strip()) and not SKIP_OK.match(line.strip())
    ]
    assert not bad, "理由の無い、または形の違う skip: " + "; ".join(bad)


def figure_sources() -> set[str]:
    """図を描くスクリプトの名前（構造図は原稿の {mermaid} に書くので含まない）。"""
    return {
        p.stem
        for p in FIGURES_SRC.glob("*.py")
        if not p.name.startswith("_")
    }


def test_no_mermaid_files_outside_the_manuscript() -> None:
    """構造図のソースは原稿の {mermaid} にだけ置く（別ファイルの .mmd を作らない）。"""
    stray = sorted(
        str(p.relative_to(ROOT))
        for p in ROOT.glob("**/*.mmd")
        if not {"node_modules", ".venv", "build", "dist"} & set(p.parts)
    )
    assert not stray, f"原稿の {{mermaid}} に移す: {stray}"


@pytest.mark.parametrize(
    "path", book_files(), ids=lambda p: str(p.relative_to(ROOT))
)
def test_images_are_generated(path: Path) -> None:
    """本文が参照する画像は、すべて figures_src のスクリプトか Mermaid のソースから生成したもの。"""
    sources = figure_sources()
    text = path.read_text(encoding="utf-8")
    refs = [
        m.group("path")
        for line in text.splitlines()
        if (m := IMAGE_DIRECTIVE.match(line.strip()))
    ]
    refs += [m.group("path") for m in MD_IMAGE.finditer(text)]
    for ref in refs:
        name = Path(ref).name
        assert "_generated/figures/" in ref, (
            f"{path.name}: {ref} は生成した図ではない"
        )
        assert name.endswith(".*"), (
            f"{path.name}: {ref} は `名前.*` で参照し、形式は Sphinx に選ばせる"
        )
        stem = name[:-2]
        owner = stem.split("-")[0]
        assert owner in sources, (
            f"{path.name}: {ref} を作るスクリプトが figures_src に無い"
        )


def mermaid_blocks(
    path: Path,
) -> list[tuple[int, str, dict[str, str], list[str]]]:
    """原稿の {mermaid} ブロックの（開始行、指示の引数、オプション、Mermaid のソース）。"""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    n = 0
    while n < len(lines):
        m = MERMAID_DIRECTIVE.match(lines[n].strip())
        n += 1
        if not m:
            continue
        start, options, code = n, {}, []
        while n < len(lines) and lines[n].strip() != m.group("fence"):
            opt = re.match(r"^:(\w+):\s*(.*)$", lines[n])
            if opt and not code:
                options[opt.group(1)] = opt.group(2).strip()
            elif lines[n].strip() or code:
                code.append(lines[n])
            n += 1
        found.append((start, m.group("arg").strip(), options, code))
    return found


@pytest.mark.parametrize(
    "path", book_files(), ids=lambda p: str(p.relative_to(ROOT))
)
def test_mermaid_blocks_are_figures(path: Path) -> None:
    """構造図の {mermaid} は、原稿の中にソースを書き、図番号・参照・代替テキストを持つ。"""
    bad = []
    for start, arg, options, code in mermaid_blocks(path):
        where = f"{path.name}:{start}"
        if arg:
            bad.append(
                f"{where} ソースはファイル（{arg}）でなく原稿の中に書く"
            )
        if not any(line.strip() for line in code):
            bad.append(f"{where} Mermaid のソースが無い")
        for key in ("name", "caption", "alt"):
            if not options.get(key):
                bad.append(f"{where} :{key}: が無い")
        if not options.get("name", "fig-").startswith("fig-"):
            bad.append(
                f"{where} :name: は fig- で始める（{options['name']}）"
            )
    assert not bad, "構造図の書き方: " + "; ".join(bad)


def test_no_hand_placed_images() -> None:
    """原稿のフォルダに手で置いた画像が無いこと（生成物の _generated は除く）。"""
    exts = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".pdf"}
    placed = [
        p.relative_to(ROOT)
        for p in BOOK.rglob("*")
        if p.suffix.lower() in exts and "_generated" not in p.parts
    ]
    assert not placed, f"手で置いた画像: {placed}"


def included_listings() -> set[Path]:
    used = set()
    for path in book_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            m = LITERALINCLUDE.match(line.strip())
            if m:
                used.add((path.parent / m.group("path")).resolve())
    return used


def test_literalincludes_point_to_verified_code() -> None:
    """literalinclude で取り込めるのは listings/ と easy_transformer/ のファイルだけ（どちらもテストされる）。"""
    for target in included_listings():
        assert target.exists(), f"{target} が無い"
        rel = target.relative_to(ROOT)
        assert rel.parts[0] in {"listings", "easy_transformer"}, (
            f"{rel} はテストされない場所にある"
        )


def test_every_listing_is_used() -> None:
    """listings/ のファイルはどれも本文から取り込まれている（使われない掲載コードを残さない）。"""
    used = included_listings()
    unused = [
        p.relative_to(ROOT)
        for p in LISTINGS.rglob("*.py")
        if p.name != "__init__.py" and p.resolve() not in used
    ]
    assert not unused, f"本文から取り込まれていない listing: {unused}"


def _code_lines() -> list[tuple[str, int, str]]:
    found = []
    for path in book_files():
        for start, info, body in code_blocks(path):
            if info.startswith("{") and not info.startswith("{code"):
                continue
            for k, line in enumerate(body, 1):
                found.append((str(path.relative_to(ROOT)), start + k, line))
    for path in sorted(LISTINGS.rglob("*.py")):
        for n, line in enumerate(
            path.read_text(encoding="utf-8").splitlines(), 1
        ):
            found.append((str(path.relative_to(ROOT)), n, line))
    return found


def test_code_lines_fit_the_page() -> None:
    """PDF の版面からはみ出すコードの行が無いこと。"""
    too_long = [
        f"{p}:{n} ({display_width(line)})"
        for p, n, line in _code_lines()
        if display_width(line) > MAX_CODE_WIDTH
    ]
    assert not too_long, f"{MAX_CODE_WIDTH} 桁を超える行: " + ", ".join(
        too_long
    )


def test_exercises_and_solutions_are_paired() -> None:
    """演習 `(chNN-ex-K)=` と付録の解答 `(chNN-sol-K)=` が 1 対 1 に対応すること。"""
    label = re.compile(
        r"^\((?P<name>[a-z0-9]+)-(?P<kind>ex|sol)-(?P<num>\d+)\)=$", re.M
    )
    exercises, solutions = set(), set()
    for path in book_files():
        for m in label.finditer(path.read_text(encoding="utf-8")):
            key = (m.group("name"), int(m.group("num")))
            (exercises if m.group("kind") == "ex" else solutions).add(key)
    assert exercises, "演習が 1 つも無い"
    assert exercises == solutions, (
        f"解答の無い演習: {sorted(exercises - solutions)}、問題の無い解答: {sorted(solutions - exercises)}"
    )


KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
INDEX_ROLE = re.compile(r"\{index\}`(?P<body>[^`]+)`")


def index_terms() -> set[str]:
    """索引に載る語（{index} の見出しと用語集の見出し語）。"""
    terms = set()
    for path in book_files():
        text = path.read_text(encoding="utf-8")
        for m in INDEX_ROLE.finditer(text):
            body = m.group("body")
            target = re.search(r"<(?:single:\s*)?(?P<t>[^>]+)>", body)
            terms.add((target.group("t") if target else body).strip())
        in_glossary = False
        for line in text.splitlines():
            if line.startswith(":::{glossary}"):
                in_glossary = True
            elif in_glossary and line.startswith(":::"):
                in_glossary = False
            elif in_glossary and line and not line.startswith((" ", ":")):
                terms.add(line.strip())
    return terms


def test_every_index_term_falls_under_a_reading_heading() -> None:
    """HTML の索引で、どの語も英字か「あ・か・さ…」の見出しの下に入る。

    読みの辞書に無い漢字で始まる語は「記号・その他」に落ちる
    （tools/sphinxext/yomi.py の group_label）。
    """
    sys.path.insert(0, str(ROOT / "tools" / "sphinxext"))
    from yomi import group_label

    stray = sorted(
        t for t in index_terms() if group_label(t) == "記号・その他"
    )
    assert not stray, f"読みの見出しに入らない索引語: {stray}"


def test_each_word_has_one_index_entry() -> None:
    """同じ語が索引で 2 行に分かれない（「層正規化」と「層正規化（layer normalization）」など）。

    索引の見出しは、括弧の前の語が同じなら 1 つの文字列にそろえる
    （CONTRIBUTING.md §9: 見出しは用語集の見出し語と同じ文字列にする）。
    """
    by_word: dict[str, set[str]] = {}
    for term in index_terms():
        by_word.setdefault(term.split("（")[0].strip(), set()).add(term)
    split = {word: sorted(t) for word, t in by_word.items() if len(t) > 1}
    assert not split, f"同じ語の索引の見出しが複数ある: {split}"


def test_index_terms_have_readings() -> None:
    """漢字を含む索引語は、PDF の索引で正しく並ぶように読みの辞書に載っている。"""
    dic = ROOT / "book" / "_latex" / "easy-transformer.dic"
    words = [
        line.split("\t")[0]
        for line in dic.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    missing = []
    for term in sorted(index_terms()):
        rest = term
        for word in sorted(words, key=len, reverse=True):
            rest = rest.replace(word, "")
        if KANJI.search(rest):
            missing.append(term)
    assert not missing, (
        f"{dic.relative_to(ROOT)} に読みの無い索引語: {missing}"
    )


def test_glossary_is_sorted() -> None:
    """用語集は五十音順に並んでいる（直すには tools/sort_glossary.py）。"""
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "sort_glossary.py"),
            "--check",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---- 参考文献（book/references.bib と本文の {cite:…}。CONTRIBUTING.md §10） ----

BIBFILE = BOOK / "references.bib"
CITE = re.compile(r"\{cite:[a-z]+\}`(?P<keys>[^`]+)`")


def bookbib():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "tools" / "sphinxext"))
    import bookbib

    return bookbib


def bib_entries():  # type: ignore[no-untyped-def]
    from pybtex.database import parse_file

    return parse_file(str(BIBFILE), "bibtex").entries


def cited_keys() -> dict[str, list[str]]:
    """本文の引用キーと、それを引用しているファイル。"""
    cited: dict[str, list[str]] = {}
    for path in book_files():
        for m in CITE.finditer(path.read_text(encoding="utf-8")):
            for key in m.group("keys").split(","):
                cited.setdefault(key.strip(), []).append(
                    str(path.relative_to(ROOT))
                )
    return cited


def test_every_citation_is_in_the_bibliography() -> None:
    """本文の {cite:…} のキーは、すべて references.bib にある。"""
    entries = bib_entries()
    missing = {k: v for k, v in cited_keys().items() if k not in entries}
    assert not missing, f"references.bib に無い引用: {missing}"


def test_every_bib_entry_is_cited() -> None:
    """references.bib の文献は、どれも本文から 1 回以上引用されている。"""
    cited = cited_keys()
    unused = sorted(k for k in bib_entries() if k not in cited)
    assert not unused, f"本文から引用されていない文献: {unused}"


def test_no_hand_written_references_remain() -> None:
    """古い書き方（{ref} で bib- のラベルを指す）が残っていない。"""
    stale = [
        str(p.relative_to(ROOT))
        for p in book_files()
        if "<bib-" in p.read_text(encoding="utf-8")
    ]
    assert not stale, f"{{cite:…}} に直していない引用: {stale}"


def test_bib_entries_are_complete() -> None:
    """各文献に本書での位置づけ（annote）と年がある。漢字・かなの著者には読みがある。"""
    bb = bookbib()
    problems = []
    for key, entry in bib_entries().items():
        if not entry.fields.get("annote", "").strip():
            problems.append(f"{key}: annote（本書での位置づけ）が無い")
        if not entry.fields.get("year"):
            problems.append(f"{key}: year が無い")
        if not entry.persons.get("author"):
            problems.append(f"{key}: author が無い")
        if bb.sort_key(entry)[0] == 2:
            problems.append(f"{key}: 漢字の著者に yomi（読み）が無い")
    assert not problems, "\n".join(problems)


def test_bib_labels_are_unambiguous() -> None:
    """「著者 (年)」のラベルが 2 つの文献で同じにならない（同じなら labelyear で a・b を付ける）。

    a・b は一覧の並び順に付ける。
    """
    bb = bookbib()
    style = bb.BookStyle()
    seen: dict[str, str] = {}
    for entry in style.sort(bib_entries().values()):
        label = bb.label(entry)
        assert label not in seen, (
            f"{seen[label]} と {entry.key} が同じラベル {label}"
        )
        seen[label] = entry.key
    labels = list(seen)
    suffixed = [lb for lb in labels if re.search(r"\d{4}[a-z]\)$", lb)]
    assert suffixed == sorted(suffixed, key=labels.index)
    for a, b in itertools.pairwise(suffixed):
        if a[:-2] == b[:-2]:  # 「… (2020」まで同じ
            assert a[-2] < b[-2], (a, b)


SAMPLE_BIB = """
@book{yamada2020, author = {山田, 太郎}, title = {コンパイラの本}, publisher = {架空書房},
  year = {2020}, yomi = {やまだ たろう}, annote = {テスト}}
@article{ito2019, author = {伊藤, 花子 and 佐藤, 一郎 and 鈴木, 次郎}, title = {注意の研究},
  journal = {架空学会誌}, volume = {3}, number = {1}, pages = {1–10}, year = {2019},
  yomi = {いとう はなこ}, annote = {テスト}}
@misc{goto2021, author = {後藤, 三郎 and 渡辺, 四郎}, title = {字句解析}, year = {2021},
  howpublished = {架空のブログ}, yomi = {ごとう さぶろう}, annote = {テスト}}
@misc{kato2018, author = {加藤, 五郎}, title = {構文解析}, year = {2018},
  howpublished = {架空のブログ}, yomi = {カトウ ゴロウ}, annote = {テスト}}
@misc{sato2022, author = {佐藤, 一郎}, title = {型推論}, year = {2022},
  howpublished = {架空のブログ}, yomi = {さとう いちろう}, annote = {テスト}}
@misc{sato2017, author = {佐藤, 一郎}, title = {型検査}, year = {2017},
  howpublished = {架空のブログ}, yomi = {さとう いちろう}, annote = {テスト}}
@misc{watanabe2010, author = {渡辺, 四郎}, title = {最適化}, year = {2010},
  howpublished = {架空のブログ}, annote = {テスト}}
@book{aho2006, author = {Alfred V. Aho and Monica S. Lam and Ravi Sethi and Jeffrey D. Ullman},
  title = {Compilers}, publisher = {Addison-Wesley}, year = {2006}, annote = {テスト}}
@misc{zhang2019, author = {Biao Zhang and Rico Sennrich}, title = {RMSNorm}, year = {2019},
  eprint = {1910.07467}, annote = {テスト}}
@misc{deletang2023, author = {Grégoire Delétang and others}, title = {Chomsky}, year = {2023},
  eprint = {2207.02098}, annote = {テスト}}
"""


def test_bib_sorts_japanese_entries_by_reading() -> None:
    """英字の著者を A〜Z で先に、漢字・かなの著者を読み（yomi）の五十音順で後に並べる。

    同じ著者は年の順。「ご」は「こ」の位置（濁点を無視）、カタカナの読みはひらがなと同じに扱う。
    読みの無い漢字の著者は末尾に回る（test_bib_entries_are_complete が検出する）。
    """
    from pybtex.database import parse_string

    bb = bookbib()
    entries = parse_string(SAMPLE_BIB, "bibtex").entries
    style = bb.BookStyle()
    ordered = style.sort(entries.values())
    assert [e.key for e in ordered] == [
        "aho2006",
        "deletang2023",
        "zhang2019",
        "ito2019",  # いとう
        "kato2018",  # カトウ（かとう）
        "goto2021",  # ごとう（ことう の位置）
        "sato2017",  # さとう（年の順）
        "sato2022",
        "yamada2020",  # やまだ
        "watanabe2010",  # 読みが無い: 末尾
    ]
    assert list(style.format_labels(ordered)) == [
        "Aho et al. (2006)",
        "Delétang et al. (2023)",
        "Zhang and Sennrich (2019)",
        "伊藤ほか (2019)",
        "加藤 (2018)",
        "後藤・渡辺 (2021)",
        "佐藤 (2017)",
        "佐藤 (2022)",
        "山田 (2020)",
        "渡辺 (2010)",
    ]
    assert bb.sort_key(entries["watanabe2010"])[0] == 2
    text = bb.format_text(entries["ito2019"]).render_as("text")
    assert text == (
        '伊藤ほか (2019) 伊藤花子, 佐藤一郎, 鈴木次郎. "注意の研究." '
        "架空学会誌, 3(1), pp. 1–10, 2019. （テスト）"
    )


TOCTREE = re.compile(r"^[`:]{3,}\{toctree\}\n(.*?)^[`:]{3,}$", re.M | re.S)


def toctree_entries(index: Path) -> list[str]:
    """部の扉（index.md）の toctree に並ぶ文書の名前。"""
    entries = []
    for body in TOCTREE.findall(index.read_text(encoding="utf-8")):
        for line in body.splitlines():
            line = line.strip()
            if line and not line.startswith(":"):
                entries.append(line)
    return entries


PARTS = sorted(BOOK.glob("part*/index.md"))
# まだ章の無い部（扉だけを置き、予定を示す）。名前 → 理由。
# ここに入れた部は xfail(strict) になり、章を足したら外し忘れに気づける
UNWRITTEN_PARTS: dict[str, str] = {}


@pytest.mark.parametrize(
    "index",
    [
        pytest.param(
            path,
            marks=pytest.mark.xfail(
                reason=UNWRITTEN_PARTS[path.parent.name], strict=True
            ),
        )
        if path.parent.name in UNWRITTEN_PARTS
        else path
        for path in PARTS
    ],
    ids=lambda p: p.parent.name,
)
def test_part_has_chapters(index: Path) -> None:
    """各部の扉の toctree に章が 1 つ以上あり、そのファイルがある。

    章が無くても Sphinx のビルドは通り、存在する章だけを調べる
    test_chapter_follows_the_guide も通ってしまうので、ここで数える。
    """
    entries = toctree_entries(index)
    assert entries, f"{index.relative_to(ROOT)} の toctree に章が無い"
    for entry in entries:
        name = entry if entry.endswith(".md") else f"{entry}.md"
        assert (index.parent / name).is_file(), entry


def chapter_files() -> list[Path]:
    return sorted(BOOK.glob("part*/ch[0-9][0-9]-*.md"))


@pytest.mark.parametrize(
    "path", chapter_files(), ids=lambda p: str(p.relative_to(ROOT))
)
def test_chapter_follows_the_guide(path: Path) -> None:
    """各章が CONTRIBUTING.md の「章の型」と「量と要素」の最低限を満たす。"""
    text = path.read_text(encoding="utf-8")
    number = path.name[2:4]
    assert text.startswith(f"(ch{number})=\n# 第{int(number)}章 "), (
        "章の見出しとラベル"
    )
    for heading in ("## この章で学ぶこと", "## まとめ", "## 演習問題"):
        assert f"\n{heading}\n" in text, f"{heading} が無い"
    assert ":class: compiler-analogy" in text, (
        "コンパイラとの対比のコラムが無い"
    )
    # 図は {figure}（matplotlib の図など）と、キャプションの付いた {mermaid}（構造図）
    figures = re.findall(r"^[`:]{3,}\{(?:figure|mermaid)\}", text, re.M)
    assert len(figures) >= 2, f"図が {len(figures)} 個（2 個以上）"
    runnable = [
        b for b in code_blocks(path) if b[1].split()[0:1] == ["python"]
    ]
    assert len(runnable) >= 3, (
        f"実行されるコード例が {len(runnable)} 個（3 個以上）"
    )
    exercises = re.findall(rf"^\(ch{number}-ex-\d+\)=$", text, re.M)
    assert len(exercises) >= 3, f"演習が {len(exercises)} 問（3 問以上）"


def test_skip_count_in_the_book_is_current() -> None:
    """環境構築の章と解答に載せた「飛ばしたブロックの件数」が実際の件数と合う。"""
    skips = len(
        [
            line
            for path in book_files()
            for line in path.read_text(encoding="utf-8").splitlines()
            if SKIP_OK.match(line.strip())
        ]
    )
    expected = f"本文で実行を飛ばしたコードブロック: {skips} 件"
    for rel in (
        "frontmatter/setup.md",
        "appendix/solutions/frontmatter.md",
    ):
        text = (BOOK / rel).read_text(encoding="utf-8")
        assert expected in text, f"{rel} の件数を {skips} 件に直す"
