"""easy_transformer: 『作って学ぶ Transformer』で組み立てる実装。

各モジュールの中身は、本の章の順に上から読めるように並べてある。
ただし第17章の Llama 形式の部品（RMSNorm・SwiGLU・GQA の repeat_kv）
は、置き換える相手（LayerNorm・FeedForward・MultiHeadAttention）の
すぐそばに置く（違いを見比べやすいように）。
モジュールも、本で初めて出てくる順に次のように読める。

第1部 言語処理系から見た Transformer

- ``minilang``: 本書の式言語（字句解析・構文解析・コード生成・評価）。
  課題の正解を作る（第1・2章）
- ``code_tokenizer``: コードを字句単位で切るトークナイザ（第2章）
- ``debug``: 形・勾配・活性の監視（第4章。第8・14・15章でも使う）

第2部 注意機構の直感

- ``tokenizer``: テキストと ID を行き来する（第5章。BPE と WordPiece は
  第19章）
- ``embedding``: トークンの埋め込みと位置エンコーディング（第5・7章）
- ``attention``: 注意の計算と多頭注意（第6・9章）。GQA は第17章、
  KV キャッシュは第20章
- ``layers``: 層正規化・残差接続（第8章）、FFN（第10章）、エンコーダと
  デコーダの 1 層（第11・12章）。RMSNorm と SwiGLU は第17章

第3部 Transformer の構造

- ``transformer``: エンコーダ・デコーダの Transformer（第12章）

第4部 実装と学習

- ``training``: 学習ループ（Trainer）と分散学習（第13〜15章）
- ``checkpoint``: 学習の途中経過の保存と読み込み（第14章）
- ``viz``: 本の図の描画（第5章〜。第15章で学習曲線）
- ``tasks``: 系列変換の課題とプログラムのコーパス（第16章）
- ``seq2seq_experiment``: 課題の学習と評価（第16章）

第5部 LLM への拡張

- ``gpt``: デコーダだけの GPT と GPT-2 の重みの読み込み（第17章）。
  設定で RMSNorm・SwiGLU・RoPE・GQA に切り替えられる
- ``llama``: Llama 形式の設定と、Hugging Face の Llama の重みの読み込み
  （第17章）
- ``lm_experiment``: GPT の学習とテキストの生成（第17章）
- ``finetune``: 分類の頭、層ごとの学習率、転移学習の課題（第18章）
- ``lora``: 低ランクの差分だけを学習する LoRA（第18章）
- ``generation``: 生成の戦略（温度・top-k・top-p・繰り返しペナルティ・
  ビームサーチ・左パディングのバッチ生成。第20章）
- ``quantization``: 重みの int8 量子化（第20章）

道具

- ``model_io``: 学習したモデルとトークナイザの保存と読み込み
- ``data``: 同梱したデータ（GPT-2 の語彙と tinyshakespeare）
- ``cli``: コマンドライン（``python -m easy_transformer``）
"""

__version__ = "0.1.0"
