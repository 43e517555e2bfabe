#!/usr/bin/env bash
# HTML のページをヘッドレス Chromium で PNG にする（目で確かめるため）。
# 使い方: tools/screenshot.sh dist/html/frontmatter/preface.html out.png [幅x高さ]
# Chromium の実行ファイルは環境変数 CHROMIUM で変えられる（既定は PATH 上の chromium）。
# --no-sandbox（root でも動かすため）で起動するのは、手元でビルドしたファイルだけを開くため。
# 信頼できない HTML（外から取ってきたページなど）には使わない。
set -euo pipefail
page=$(realpath "$1"); out=$2; size=${3:-1280,2000}
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"${CHROMIUM:-chromium}" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --virtual-time-budget=8000 \
  --window-size="$size" --screenshot="$out" "file://$page" >/dev/null 2>&1
echo "$out"
