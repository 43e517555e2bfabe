#!/usr/bin/env bash
# 執筆中の確認用: make の使う build/html・build/latex とは別の、名前ごとのフォルダ
# build/preview-名前/ に HTML と PDF を作り、章ごとのページ数を表示する。
# 複数人が同時に執筆していても、互いのビルドを壊さない。
# 出力先をリポジトリの中（build/ は git の管理外）に置くのは、/tmp の決まった名前の
# フォルダだと、複数の人が使うマシンでシンボリックリンクを使った攻撃の余地があるため。
#
# 使い方: [SKIP_FIGURES=1] tools/preview.sh 名前 [html|pdf|all]
#   出力: build/preview-名前/html/、build/preview-名前/easy-transformer.pdf
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?名前を指定してください（例: part1）}
what=${2:-all}
case $name in
  *[!A-Za-z0-9_.-]* | .*) echo "名前は英数字と _ . - で（先頭は . 以外）: $name" >&2; exit 2 ;;
esac
out=$PWD/build/preview-$name
mkdir -p "$out"
# SKIP_FIGURES=1 なら図を作り直さない（複数人の執筆中、全図の作り直しで CPU を占めないため）
if [ "${SKIP_FIGURES:-}" != 1 ]; then make -s figures; fi
opts=(-W --keep-going -n -q -c .)
if [ "$what" = html ] || [ "$what" = all ]; then
  .venv/bin/sphinx-build "${opts[@]}" -b html -d "$out/doctrees-html" book "$out/html"
  echo "HTML: $out/html/index.html"
fi
if [ "$what" = pdf ] || [ "$what" = all ]; then
  .venv/bin/sphinx-build "${opts[@]}" -b latex -d "$out/doctrees-latex" book "$out/latex"
  rm -f "$out"/latex/*.ind
  make -C "$out/latex" all-pdf LATEXMKOPTS=-silent > "$out/latex.log" 2>&1 \
    || { tail -40 "$out/latex.log"; exit 1; }
  cp "$out/latex/easy-transformer.pdf" "$out/easy-transformer.pdf"
  .venv/bin/python - "$out/easy-transformer.pdf" <<'PY'
import sys
sys.path.insert(0, "tools")
from pypdf import PdfReader
from check_book import outline_spans
reader = PdfReader(sys.argv[1])
print(f"PDF: {sys.argv[1]}（{len(reader.pages)} ページ）")
for title, first, count in outline_spans(reader):
    if not title.startswith("    "):
        print(f"  {title}: {count} ページ（{first + 1} ページ目から）")
PY
fi
