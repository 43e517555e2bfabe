#!/usr/bin/env bash
# 本のビルドに要る Debian パッケージを確かめ、無ければ入れる（何度実行しても安全）。
# root なら自動で入れる。root でないときは、環境変数 ALLOW_SUDO=1 を
# 明示したときだけ sudo で入れる（黙って sudo を使わない）。
# どちらでもなければ、足りないパッケージ名と入れるコマンドを示して止まる。
#
# 使い方: tools/ensure-system-deps.sh [node|book]
#   node: npm の道具（textlint、Mermaid の描画）に要るもの（Node.js、Chromium）
#   book: 上に加えて、PDF と EPUB に要るもの（TeX Live、フォント、epubcheck など）
set -euo pipefail

group=${1:-book}
PACKAGES=(chromium fonts-noto-cjk)
if [ "$group" = book ]; then
  PACKAGES+=(
    texlive-lang-japanese texlive-latex-recommended texlive-latex-extra
    texlive-fonts-recommended latexmk tex-gyre poppler-utils
    epubcheck dvisvgm zip
  )
fi
# Node.js が無い環境では Debian のものを入れる（版は下で確かめる）
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "Debian パッケージを入れます: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
  elif [ "${ALLOW_SUDO:-}" = 1 ]; then
    SUDO=(sudo)
  else
    {
      echo "エラー: 次の Debian パッケージが必要ですが、root ではないので入れませんでした。"
      echo "次のコマンドを自分で実行するか、sudo で入れてよければ ALLOW_SUDO=1 を付けて"
      echo "make をやり直してください（例: ALLOW_SUDO=1 make setup）:"
      echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
    } >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "Debian パッケージを入れました"
fi

# textlint 15 は Node.js 20.18 以上を要る（Debian 12 の nodejs は 18 なので足りない）
node_version=$(node -e 'process.stdout.write(process.versions.node)')
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=18)?0:1)'; then
  echo "エラー: Node.js $node_version は古すぎます。20.18 以上を入れてください（例: NodeSource の nodejs 20 か 22）。" >&2
  exit 1
fi
echo "Debian パッケージ（$group）: そろっています。Node.js $node_version"
