"""``python -m easy_transformer`` の入口。中身は cli.py にある。"""

from easy_transformer.cli import main

raise SystemExit(main())
