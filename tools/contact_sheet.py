"""PDF のページ画像（pdftoppm の PNG）を 1 枚の一覧画像にまとめる（目で確かめるため）。

使い方: python tools/contact_sheet.py out.png page-01.png page-02.png ... [--cols 6]
"""

from __future__ import annotations

import argparse

from PIL import Image, ImageDraw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("pages", nargs="+")
    parser.add_argument("--cols", type=int, default=6)
    args = parser.parse_args()
    images = [Image.open(p).convert("RGB") for p in args.pages]
    w = max(i.width for i in images)
    h = max(i.height for i in images)
    rows = (len(images) + args.cols - 1) // args.cols
    sheet = Image.new("RGB", (w * args.cols, h * rows), "#888888")
    draw = ImageDraw.Draw(sheet)
    for k, img in enumerate(images):
        x, y = (k % args.cols) * w, (k // args.cols) * h
        sheet.paste(img, (x, y))
        draw.rectangle(
            (x, y, x + img.width - 1, y + img.height - 1), outline="#444444"
        )
        draw.text((x + 4, y + 4), str(k + 1), fill="#cc0000")
    sheet.save(args.out)


if __name__ == "__main__":
    main()
