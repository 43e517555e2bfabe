#!/usr/bin/env bash
# 本のビルドに要る Debian パッケージを確かめ、無ければ入れる（何度実行しても安全）。
# root か、パスワードなしの sudo が使える環境でだけ自動で入れる。
# どちらでもなければ、足りないパッケージ名を並べて止まる。
set -euo pipefail

PACKAGES=(
  texlive-lang-japanese texlive-latex-recommended texlive-latex-extra
  texlive-fonts-recommended latexmk tex-gyre fonts-noto-cjk poppler-utils
  epubcheck dvisvgm chromium zip
)
# Node.js が無い環境では Debian のものを入れる（mermaid-cli 11 は Node 18.19 以上で動く）
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "Debian パッケージ: すべて入っています"
  exit 0
fi

echo "Debian パッケージを入れます: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  {
    echo "エラー: 次の Debian パッケージが必要ですが、root でも sudo でもないので入れられません。"
    echo "管理者に次のコマンドを実行してもらってください:"
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  } >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "Debian パッケージを入れました"
