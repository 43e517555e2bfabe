"""easy_transformer: 『作って学ぶ Transformer』で読者と一緒に組み立てる Transformer の実装。

各モジュールは本の章の順に上から読めるように並べてある。
"""

__version__ = "0.1.0"
