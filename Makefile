# easy-transformer の本とパッケージのビルド。
# 新しいマシンでも `make book` と `make test` だけで依存の準備から済むようにしてある。
# 依存の準備は何度実行しても安全（済んでいれば何もしない）。

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SPHINXBUILD := $(VENV)/bin/sphinx-build
SPHINXOPTS ?= -W --keep-going -n -q
VENV_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
SYSDEPS_STAMP := build/.system-deps-book
NODEDEPS_STAMP := build/.system-deps-node

# 同じコミットからは同じ本ができるように、日付はコミットの時刻にそろえる
# （conf.py のビルド日、EPUB の日付と zip の時刻、dvipdfmx の日付）
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
export SOURCE_DATE_EPOCH

GEN := book/_generated
FIGDIR := $(GEN)/figures
STATIC := $(GEN)/static
DIST := dist

PKG_SRC := $(shell find easy_transformer -name '*.py' 2>/dev/null)
FIG_SCRIPTS := $(filter-out figures_src/_%.py,$(wildcard figures_src/*.py))
FIG_STAMPS := $(patsubst figures_src/%.py,$(FIGDIR)/.%.stamp,$(FIG_SCRIPTS))
STATIC_OUT := $(STATIC)/mathjax/tex-svg-full.js $(STATIC)/cover.png
BENCH_MD := $(GEN)/benchmarks.md
# Sphinx の拡張と、原稿の構造図（{mermaid}）を Sphinx が mmdc で描くときの設定
SPHINX_EXT := $(wildcard tools/sphinxext/*.py) tools/mermaid-config.json tools/puppeteer-config.json
BOOK_SRC := $(shell find book listings -type f \( -name '*.md' -o -name '*.py' -o -name '*.sty' -o -name '*.css' -o -name '*.dic' -o -name '*.bib' \) -not -path 'book/_generated/*' 2>/dev/null) conf.py $(SPHINX_EXT) $(wildcard benchmarks/results/*.json)

# Sphinx は拡張や conf.py のコードの変更を検出しないので、変わったら doctree を捨てる
SPHINX_CODE := conf.py $(SPHINX_EXT) $(wildcard benchmarks/results/*.json)
fresh-doctrees = for f in $(SPHINX_CODE); do [ build/doctrees/$(1)/environment.pickle -nt $$f ] || rm -rf build/doctrees/$(1); done


.PHONY: help book html pdf epub figures test test-gpu lint clean distclean live setup deps-python deps-node deps-system check-book notebooks

help: ## このヘルプを表示する
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

# ---- 依存の準備 -------------------------------------------------------------

setup: deps-system deps-python deps-node ## 依存（Debian パッケージ・Python・npm）をすべて準備する

deps-system: $(SYSDEPS_STAMP)
$(SYSDEPS_STAMP): tools/ensure-system-deps.sh
	bash tools/ensure-system-deps.sh book
	@mkdir -p $(@D) && touch $@ $(NODEDEPS_STAMP)
$(NODEDEPS_STAMP): tools/ensure-system-deps.sh
	bash tools/ensure-system-deps.sh node
	@mkdir -p $(@D) && touch $@

# torch は PyPI から入れると Linux では CUDA 版（nvidia-* と合わせて数 GB）になる。
# 既定では CPU 版の索引を足す。環境変数 PIP_EXTRA_INDEX_URL があればそれを使い、
# 空にすれば足さない。
# その索引に届かない環境（PyPI しか見えない CI のサンドボックスなど）では付けない。
# 届かない索引を付けると、pip がパッケージごとに再試行して何十分も止まるため。
PIP_EXTRA_INDEX_URL ?= $(shell $(PYTHON) -c "import socket; socket.create_connection(('download.pytorch.org', 443), 3)" >/dev/null 2>&1 && echo https://download.pytorch.org/whl/cpu)
PIP_EXTRA := $(if $(PIP_EXTRA_INDEX_URL),--extra-index-url $(PIP_EXTRA_INDEX_URL))

deps-python: $(VENV_STAMP)
$(VENV_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@mkdir -p build
	@echo "Python の依存を入れます（記録: build/pip.log）"
	{ $(PY) -m pip install --upgrade pip && $(PY) -m pip install $(PIP_EXTRA) -e '.[dev]'; } \
	  > build/pip.log 2>&1 || { tail -40 build/pip.log; exit 1; }
	touch $@

deps-node: $(NPM_STAMP)
$(NPM_STAMP): package.json package-lock.json | $(NODEDEPS_STAMP)
	PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	touch $@

# ---- 図 ---------------------------------------------------------------------

figures: $(FIG_STAMPS) $(STATIC_OUT) $(BENCH_MD) ## 図をすべて生成する（変更があったものだけ）

# 図は計測の記録（JSON）を読むものがあるので、記録が変わっても描き直す
$(FIGDIR)/.%.stamp: figures_src/%.py figures_src/_figlib.py $(PKG_SRC) $(wildcard benchmarks/results/*.json) | $(VENV_STAMP)
	@mkdir -p $(FIGDIR)
	cd figures_src && ../$(PY) $*.py
	@touch $@

# 付録「ベンチマークの結果」の表は、計測の記録（JSON）から作る
$(BENCH_MD): tools/bench_report.py $(wildcard benchmarks/results/*.json) | $(VENV_STAMP)
	$(PY) tools/bench_report.py

$(STATIC)/mathjax/tex-svg-full.js: | $(NPM_STAMP)
	@mkdir -p $(@D)
	cp node_modules/mathjax/es5/tex-svg-full.js $@

$(STATIC)/cover.png: $(FIGDIR)/.cover.stamp
	@mkdir -p $(@D)
	cp $(FIGDIR)/cover.png $@

# ---- 本 ---------------------------------------------------------------------

book: html pdf epub notebooks ## 依存の準備から HTML・PDF・EPUB・ノートブックの生成までを行う
	cd build && rm -f ../$(DIST)/easy-transformer-html.zip && cp -r html easy-transformer-html \
	  && zip -qr ../$(DIST)/easy-transformer-html.zip easy-transformer-html && rm -rf easy-transformer-html
	@echo "成果物: $(DIST)/easy-transformer.pdf $(DIST)/easy-transformer.epub $(DIST)/html/ $(DIST)/easy-transformer-html.zip $(DIST)/notebooks/"

notebooks: $(DIST)/notebooks/.stamp ## listings から Jupyter ノートブックを作って実行する（dist/notebooks/）
$(DIST)/notebooks/.stamp: tools/make_notebooks.py $(shell find listings -name '*.py') $(PKG_SRC) | $(VENV_STAMP)
	rm -rf $(DIST)/notebooks && mkdir -p build
	$(PY) tools/make_notebooks.py --out $(DIST)/notebooks 2> build/notebooks.log \
	  || { tail -60 build/notebooks.log; exit 1; }
	@touch $@

html: $(DIST)/html/index.html ## HTML を dist/html に作る
$(DIST)/html/index.html: $(BOOK_SRC) figures | $(VENV_STAMP)
	$(call fresh-doctrees,html)
	$(SPHINXBUILD) $(SPHINXOPTS) -b html -c . -d build/doctrees/html book build/html
	rm -rf $(DIST)/html && mkdir -p $(DIST) && cp -r build/html $(DIST)/html

epub: $(DIST)/easy-transformer.epub ## EPUB を作る
$(DIST)/easy-transformer.epub: $(BOOK_SRC) figures | $(VENV_STAMP) $(SYSDEPS_STAMP)
	rm -rf build/epub
	$(call fresh-doctrees,epub)
	$(SPHINXBUILD) $(SPHINXOPTS) -b epub -t epub -c . -d build/doctrees/epub book build/epub
	$(PY) tools/repack_epub.py build/epub/easy-transformer.epub
	mkdir -p $(DIST) && cp build/epub/easy-transformer.epub $@

pdf: $(DIST)/easy-transformer.pdf ## PDF（B5 判、upLaTeX）を作る
$(DIST)/easy-transformer.pdf: $(BOOK_SRC) figures | $(VENV_STAMP) $(SYSDEPS_STAMP)
	$(call fresh-doctrees,latex)
	$(SPHINXBUILD) $(SPHINXOPTS) -b latex -c . -d build/doctrees/latex book build/latex
	# 索引の読みの辞書（.dic）が変わっても latexmk は mendex をやり直さないので、索引を消しておく
	rm -f build/latex/*.ind
	$(MAKE) -C build/latex all-pdf LATEXMKOPTS='-silent' > build/latex/make.log 2>&1 \
	  || { tail -60 build/latex/make.log; exit 1; }
	mkdir -p $(DIST) && cp build/latex/easy-transformer.pdf $@

check-book: | $(NPM_STAMP) ## できた本を検査する（epubcheck、PDF、ブラウザでのオフライン表示と検索、再現性、図の決定性）
	$(PY) tools/check_book.py
	node tools/check_browser.mjs
	$(PY) tools/check_reproducible.py
	$(PY) tools/check_figures.py

live: $(VENV_STAMP) figures ## 執筆用のライブプレビュー（http://127.0.0.1:8000）
	$(VENV)/bin/sphinx-autobuild -c . -b html -d build/doctrees/live book build/live \
	  --watch listings --watch easy_transformer --watch conf.py --ignore '*/_generated/*'

# ---- テストと検査 -----------------------------------------------------------

test: $(VENV_STAMP) ## 本文と listings の全コード、パッケージの単体テストを実行する
	$(PY) -m pytest

test-gpu: $(VENV_STAMP) ## GPU（CUDA）の経路のテスト（bf16・compile・fused AdamW・再開）。GPU が無ければスキップ
	$(PY) -m pytest -m cuda tests

lint: $(VENV_STAMP) $(NPM_STAMP) ## 日本語の校正（textlint）、ruff、mypy、ワークフローの検査
	node_modules/.bin/textlint 'book/**/*.md' README.md
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/zizmor --offline --quiet .github/workflows

clean: ## 生成物（build/・dist/・生成した図）を消す
	rm -rf build dist $(GEN)

distclean: clean ## 生成物に加えて .venv と node_modules も消す
	rm -rf $(VENV) node_modules
