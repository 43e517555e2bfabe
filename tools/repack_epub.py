"""EPUB（zip）を、同じ中身なら同じバイト列になるように詰め直す。

Sphinx は EPUB の zip に各ファイルの更新時刻を書き込むので、同じコミットから
ビルドしても時刻の分だけバイト列が変わる。中身の順序と圧縮の方法はそのままに、
時刻を SOURCE_DATE_EPOCH（無ければ 1980-01-01）にそろえて書き直す。
mimetype は EPUB の決まりどおり、先頭に無圧縮で置く。

使い方: python tools/repack_epub.py EPUB
"""

from __future__ import annotations

import os
import sys
import time
import zipfile
from pathlib import Path


def repack(path: Path) -> None:
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    # zip の時刻は 1980 年以降で、秒は偶数しか表せない
    stamp = time.gmtime(max(epoch, 315532800))[:6]
    with zipfile.ZipFile(path) as src:
        members = [(info, src.read(info)) for info in src.infolist()]
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w") as dst:
        for info, data in members:
            fixed = zipfile.ZipInfo(info.filename, date_time=stamp)
            fixed.compress_type = info.compress_type
            fixed.external_attr = 0o644 << 16
            fixed.create_system = 3  # Unix（作ったマシンの OS に依らない）
            dst.writestr(fixed, data)
    tmp.replace(path)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        repack(Path(arg))
