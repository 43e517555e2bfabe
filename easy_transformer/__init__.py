"""easy_transformer: 『作って学ぶ Transformer』で組み立てる実装。

各モジュールは本の章の順に上から読めるように並べてある。
"""

__version__ = "0.1.0"
