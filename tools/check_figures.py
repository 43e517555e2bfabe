"""図のスクリプトが決定的であること（同じバイト列の図を作ること）を確かめる。

`make figures` が book/_generated/figures/ に作った図と、各スクリプトを
一時フォルダでもう一度実行して作った図を比べる。`make check-book`
（.ci/run）から呼ぶ。`make test` に入れないのは、全部の図を 2 回ずつ
描くと数分かかるため。

使い方: python tools/check_figures.py [スクリプト名 ...]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "figures_src"
BUILT = ROOT / "book" / "_generated" / "figures"


def check(script: Path) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "ET_FIG_DIR": tmp}
        subprocess.run(
            [sys.executable, script.name], cwd=SRC, env=env, check=True
        )
        made = sorted(Path(tmp).iterdir())
        problems = []
        if not made:
            problems.append(f"{script.name}: 図を 1 つも書かなかった")
        for path in made:
            stem = path.name.rsplit(".", 1)[0]
            if stem != script.stem and not stem.startswith(
                script.stem + "-"
            ):
                problems.append(
                    f"{script.name}: 名前が規則に合わない {path.name}"
                )
            built = BUILT / path.name
            if not built.exists():
                problems.append(
                    f"{script.name}: {built} が無い（先に make figures）"
                )
            elif built.read_bytes() != path.read_bytes():
                problems.append(
                    f"{script.name}: {path.name} が実行ごとに変わる"
                )
        return problems


def main() -> int:
    names = sys.argv[1:]
    scripts = sorted(
        p
        for p in SRC.glob("*.py")
        if not p.name.startswith("_") and (not names or p.stem in names)
    )
    problems = []
    for script in scripts:
        found = check(script)
        print(f"{script.name}: {'OK' if not found else '問題あり'}")
        problems += found
    for p in problems:
        print("問題:", p, file=sys.stderr)
    print(f"図のスクリプト {len(scripts)} 本、問題 {len(problems)} 件")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
