"""コマンドライン: ``python -m easy_transformer <コマンド> ...``。

本書の実験（seq2seq_experiment.py と lm_experiment.py）を、コードを
書かずに試すための入口。

    python -m easy_transformer train-task rpn
    python -m easy_transformer train-lm --minilang
    python -m easy_transformer train-lm --data input.txt \\
        --set n_layers=6 --set d_model=384
    python -m easy_transformer generate --checkpoint runs/rpn/model.pt \\
        --prompt "(x-2)*3"

学習の設定は、設定ファイル（``--config 設定.toml``）と ``--set
key=value`` で変えられる。項目は設定の dataclass（``Seq2SeqConfig``・
``LMConfig``）から自動で作る（_settings.py）。

引数の誤り、無いファイル、壊れたチェックポイントには、直し方の分かる
1 行のメッセージを出して、0 でない終了コードで終わる（引数と設定の
誤りは 2、それ以外は 1）。それ以外の例外は、パッケージの不具合の
おそれがあるのでトレースバックを見せる。torch の読み込みには数秒
かかるので、引数を確かめ終わるまでは読み込まない。
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from easy_transformer._argparse_ja import one_line
from easy_transformer._cli_parser import (
    DEBUG_ENV,
    PROG,
    TASK_DESCRIPTIONS,
    build_parser,
)

if TYPE_CHECKING:
    from easy_transformer.lm_experiment import LMResult
    from easy_transformer.tokenizer import Tokenizer

__all__ = ["DEBUG_ENV", "PROG", "TASK_DESCRIPTIONS", "build_parser", "main"]


# ---------------------------------------------------------------------
# コマンド
# ---------------------------------------------------------------------


class CommandError(Exception):
    """利用者が直せる誤り。メッセージをそのまま 1 行で見せる。"""

    exit_code = 1


class UsageError(CommandError):
    """引数や設定の誤り（argparse の誤りと同じ終了コード 2）。"""

    exit_code = 2


def _setup_torch(device: str, threads: int | None) -> str:
    """スレッドの数を決め、デバイスの指定を確かめて返す。"""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    if device == "auto":
        return device
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise CommandError(
            f"デバイス {device!r} は知りません。auto、cpu、cuda、cuda:1、"
            "mps のように指定してください。"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CommandError(
            "CUDA の GPU が見つかりません。--device cpu にしてください。"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise CommandError(
            "MPS（Apple の GPU）が使えません。--device cpu にしてください。"
        )
    return device


def _percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _saved_files(out: Path) -> str:
    from easy_transformer._experiment import METRICS_FILE, RESULT_FILE
    from easy_transformer.model_io import MODEL_FILE

    return f"保存先: {out}（{MODEL_FILE}、{RESULT_FILE}、{METRICS_FILE}）"


# 大きさを表す項目は 1 以上、学習率は正でなければならない
_POSITIVE = (
    "n_layers",
    "n_heads",
    "d_model",
    "d_ff",
    "block_size",
    "batch_size",
    "max_steps",
    "eval_batches",
    "lr",
)


def _configure(base: Any, args: argparse.Namespace) -> Any:
    """既定の設定に --config、--steps、--set の順で上書きを当てる。"""
    from easy_transformer._settings import (
        SettingError,
        apply_settings,
        parse_assignments,
        read_toml,
    )

    try:
        assignments = parse_assignments(args.settings)
        if args.steps is not None:
            assignments.insert(0, ("max_steps", str(args.steps)))
        file_values = (
            None if args.config is None else read_toml(args.config)
        )
        cfg = apply_settings(
            base,
            file_values,
            assignments,
            file_label=f"設定ファイル {args.config} ",
        )
    except SettingError as e:
        raise UsageError(str(e)) from None
    for name in _POSITIVE:
        value = getattr(cfg, name, 1)
        if not value > 0:
            raise UsageError(f"{name}={value} は使えません。0 より大きく。")
    if cfg.d_model % cfg.n_heads:
        raise UsageError(
            f"d_model={cfg.d_model} は n_heads={cfg.n_heads} で割り切れ"
            "ません。各ヘッドの幅は d_model / n_heads なので、割り切れる"
            "組にしてください。"
        )
    from easy_transformer.lm_experiment import LMConfig, _gpt_config

    if isinstance(cfg, LMConfig):
        # GPT の設定として正しいか（position の名前など）を学習の前に
        try:
            _gpt_config(cfg, vocab_size=1)
        except ValueError as e:
            raise UsageError(str(e)) from None
    return cfg


def _check_out_dir(out: Path, args: argparse.Namespace) -> None:
    """出力先の途中経過を、--resume か --overwrite なしで上書きしない。"""
    from easy_transformer._experiment import CHECKPOINT_FILE

    checkpoint = out / CHECKPOINT_FILE
    if checkpoint.exists() and not (args.resume or args.overwrite):
        raise UsageError(
            f"出力先 {out} に学習の途中経過（{CHECKPOINT_FILE}）が"
            "あります。続きから学習するなら --resume を、最初から学習し"
            "直すなら --overwrite を付けるか、別の --out を指定して"
            "ください。"
        )
    if args.resume and not checkpoint.exists():
        print(
            f"{checkpoint} が無いので、最初から学習します。",
            file=sys.stderr,
        )


def cmd_train_task(args: argparse.Namespace) -> int:
    device = _setup_torch(args.device, args.threads)
    from easy_transformer import seq2seq_experiment as ex

    config = _configure(ex.seq2seq_config(args.task, tiny=args.tiny), args)
    out = args.out or Path("runs") / args.task
    _check_out_dir(out, args)
    print(
        f"課題 {args.task} のデータを作り、{config.max_steps} ステップ"
        "学習します。",
        file=sys.stderr,
    )
    r = ex.train_seq2seq(
        args.task,
        config=config,
        seed=args.seed,
        out_dir=out,
        device=device,
        progress=not args.no_progress,
        resume=args.resume,
    )
    lo, hi = config.max_level + 1, config.max_level + config.general_levels
    print(f"課題: {args.task} — {TASK_DESCRIPTIONS[args.task]}")
    print(
        f"学習: {r.steps} ステップ、{r.train_seconds:.1f} 秒"
        f"（パラメータ {r.n_params:,} 個）"
    )
    if r.val_loss is not None:
        print(f"検証の損失: {r.val_loss:.4f}")
    print(
        f"テストの完全一致率: {_percent(r.test_exact_match)}"
        f"（レベル 1〜{config.max_level}、{config.n_test} 例）"
    )
    print(
        f"汎化テストの完全一致率: {_percent(r.general_exact_match)}"
        f"（より高いレベル {lo}〜{hi}、{config.n_general} 例）"
    )
    print("例:")
    for e in r.examples:
        mark = "○" if e["prediction"] == e["target"] else "×"
        print(
            f"  {mark} 入力 {e['input']}  正解 {e['target']}  "
            f"予測 {e['prediction']}"
        )
    print(_saved_files(out))
    return 0


def _read_text(path: Path, what: str) -> str:
    """テキストファイルを読む。読めなければ直し方の分かる誤りにする。"""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(
            f"{what} {path} がありません。パスを確かめてください。"
        ) from None
    except IsADirectoryError:
        raise CommandError(
            f"{path} はフォルダです。{what}のファイルを指定してください。"
        ) from None
    except UnicodeDecodeError:
        raise CommandError(
            f"{path} は UTF-8 のテキストとして読めません。UTF-8 で保存"
            "したテキストファイルを指定してください。"
        ) from None


def _check_lm_args(args: argparse.Namespace) -> str | None:
    """train-lm の引数の組み合わせを確かめ、--data のテキストを返す。"""
    if args.minilang and args.tokenizer is not None:
        raise UsageError(
            "--tokenizer は --data と一緒に使います（--minilang は課題の"
            "文字の語彙を使います）。"
        )
    if args.tokenizer == "bpe" and args.vocab_size < 256:
        raise UsageError(
            f"--vocab-size {args.vocab_size} は小さすぎます。バイトレベル "
            "BPE の語彙は 256 個のバイトから始まるので、256 以上に"
            "してください。"
        )
    if args.data is None:
        return None
    return _read_text(args.data, "テキストファイル")  # 先に読めるか確かめる


def _lm_config_and_sampling(args: argparse.Namespace) -> tuple[Any, Any]:
    """train-lm の設定（--config・--set を当てたもの）と生成の設定。"""
    from dataclasses import replace

    from easy_transformer import lm_experiment as ex

    if args.minilang:
        base: Any = (
            ex.TINY_MINILANG_LM_CONFIG
            if args.tiny
            else ex.MINILANG_LM_CONFIG
        )
        smp = ex.TINY_SAMPLING if args.tiny else ex.MINILANG_SAMPLING
    else:
        base = ex.TINY_LM_CONFIG if args.tiny else ex.TEXT_LM_CONFIG
        smp = ex.TINY_TEXT_SAMPLING if args.tiny else ex.TEXT_SAMPLING
    sampling = replace(
        smp,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        n_samples=args.num_samples or smp.n_samples,
        seed=args.seed,
    )
    return _configure(base, args), sampling


def _check_text_length(text: str, cfg: Any, path: Path) -> None:
    """学習と検証の両方に、ブロック長より長い部分が残るか確かめる。

    トークンの数は文字の数以下（char なら等しい）なので、文字の数で
    足りなければ必ず足りない。
    """
    n_val = len(text) - int(len(text) * (1 - cfg.val_fraction))
    if min(n_val, len(text) - n_val) <= cfg.block_size:
        raise UsageError(
            f"{path} は短すぎます（{len(text)} 文字）。検証に使う末尾の "
            f"{cfg.val_fraction:.0%} も block_size={cfg.block_size} より"
            "長くなるよう、長いテキストを使うか --set block_size=N で"
            "小さくしてください。"
        )


def cmd_train_lm(args: argparse.Namespace) -> int:
    text = _check_lm_args(args)
    device = _setup_torch(args.device, args.threads)
    from easy_transformer import lm_experiment as ex

    cfg, sampling = _lm_config_and_sampling(args)
    if args.minilang:
        out = args.out or Path("runs") / "minilang"
    else:
        out = args.out or Path("runs") / f"lm-{args.data.stem}"
        assert text is not None
        _check_text_length(text, cfg, args.data)
    _check_out_dir(out, args)
    common: dict[str, Any] = {
        "config": cfg,
        "sampling": sampling,
        "seed": args.seed,
        "out_dir": out,
        "device": device,
        "progress": not args.no_progress,
        "resume": args.resume,
    }
    if args.minilang:
        print("ミニ言語のプログラム集を作って学習します。", file=sys.stderr)
        r = ex.train_minilang_lm(**common)
    else:
        print(f"{args.data} で学習します。", file=sys.stderr)
        r = ex.train_text_lm(
            args.data,
            tokenizer=args.tokenizer or "char",
            vocab_size=args.vocab_size,
            **common,
        )
    _print_lm_result(r)
    print(_saved_files(out))
    return 0


def _unescape(text: str) -> str:
    r"""--stop の \n と \t を改行とタブにする。"""
    return text.replace("\\n", "\n").replace("\\t", "\t")


def cmd_generate(args: argparse.Namespace) -> int:
    _setup_torch(args.device, None)
    from easy_transformer.gpt import GPT
    from easy_transformer.lm_experiment import generate_text
    from easy_transformer.model_io import load_model

    loaded = load_model(args.checkpoint, args.device)
    if not isinstance(loaded.model, GPT):
        return _generate_seq2seq(args, loaded.model, loaded.codec)
    prompt = "\n" if args.prompt is None else args.prompt
    if not prompt:
        raise UsageError("--prompt が空です。1 文字以上を渡してください。")
    _encode(loaded.codec, prompt, "--prompt")
    texts = generate_text(
        loaded.model,
        loaded.codec,
        prompt,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        do_sample=not args.greedy,
        n_samples=args.num_samples,
        seed=args.seed,
        stop=[_unescape(s) for s in args.stop],
    )
    for i, text in enumerate(texts):
        if len(texts) > 1:
            print(f"--- {i + 1} ---")
        print(prompt + text)
    return 0


def _encode(codec: Tokenizer, text: str, what: str) -> list[int]:
    """語彙にない文字などで encode できなければ、1 行の誤りにする。"""
    try:
        return codec.encode(text)
    except ValueError as e:
        raise CommandError(f"{what} をトークンにできません: {e}") from None


def _generate_seq2seq(
    args: argparse.Namespace, model: Any, vocab: Tokenizer
) -> int:
    import torch

    from easy_transformer.seq2seq_experiment import decode_output, predict
    from easy_transformer.tasks import BOS_ID, EOS_ID

    if args.prompt is None:
        raise UsageError(
            "系列変換のモデルには --prompt で入力を渡してください"
            "（例: --prompt '(x-2)*3'）。"
        )
    if args.stop or args.repetition_penalty != 1.0:
        raise UsageError(
            "--stop と --repetition-penalty は GPT のモデルで使います"
            "（系列変換のモデルは <eos> で止まります）。"
        )
    unknown = sorted(set(args.prompt) - set(vocab.token_to_id))
    if unknown:
        specials = vocab.special_tokens
        chars = [t for t in vocab.id_to_token if t not in specials]
        raise CommandError(
            f"入力の文字 {''.join(unknown)!r} はこのモデルの語彙に"
            f"ありません（使える文字: {''.join(chars)!r}）。"
        )
    # 位置エンコーディングの表より長い出力は作れない（<bos> のぶん 1 引く）
    max_new = min(args.max_new_tokens, model.config.max_len - 1)
    if args.beam is None:
        (output,) = predict(
            model, [args.prompt], vocab, max_new_tokens=max_new
        )
    else:
        src = torch.tensor(vocab.encode(args.prompt))
        ids = model.beam_search(
            src.to(next(model.parameters()).device),
            BOS_ID,
            args.beam,
            max_new,
            eos_id=EOS_ID,
        )
        output = decode_output(vocab, ids.tolist())
    print(output)
    return 0


def _print_lm_result(r: LMResult) -> None:
    print(
        f"データ: {r.name}（トークン {r.tokenizer}、語彙 {r.vocab_size}、"
        f"学習 {r.n_train_tokens:,} トークン）"
    )
    print(
        f"学習: {r.steps} ステップ、{r.train_seconds:.1f} 秒"
        f"（パラメータ {r.n_params:,} 個）"
    )
    if r.val_loss is not None:
        print(f"検証の損失: {r.val_loss:.4f}")
    if r.acceptance_rate is not None and r.sampling is not None:
        s = r.sampling
        print(
            f"パースできたプログラム: {_percent(r.acceptance_rate)}"
            f"（生成した {r.n_generated_programs} 行のうち。温度 "
            f"{s['temperature']}、top-k {s['top_k']}、top-p {s['top_p']}）"
        )
        print(
            f"評価まで成功したプログラム: {_percent(r.run_rate)}"
            "（未定義の変数や 0 除算で止まらない）"
        )
        print(f"受理したうち学習データに無いもの: {_percent(r.novel_rate)}")
    print("生成の例:")
    for text in r.samples[:10]:
        print(f"  {text!r}" if "\n" in text else f"  {text}")


def _load_tokenizer(args: argparse.Namespace) -> tuple[Tokenizer, str]:
    """--tokenizer の指定からトークナイザを作り、(それ, 説明) を返す。"""
    from easy_transformer.lm_experiment import make_text_tokenizer
    from easy_transformer.model_io import load_model
    from easy_transformer.tokenizer import ByteLevelBPETokenizer

    spec = args.tokenizer
    if spec in ("char", "bpe"):
        if spec == "bpe" and args.vocab_size < 256:
            raise CommandError(
                f"--vocab-size {args.vocab_size} は小さすぎます。256 以上に"
                "してください。"
            )
        corpus = (
            args.text
            if args.train_file is None
            else _read_text(args.train_file, "学習用のテキスト")
        )
        if not corpus:
            raise CommandError("語彙を作るテキストが空です。")
        tok = make_text_tokenizer(corpus, spec, vocab_size=args.vocab_size)
        return tok, f"{type(tok).__name__}（語彙 {tok.vocab_size}）"
    path = Path(spec)
    if path.is_dir():
        encoder, merges = path / "encoder.json", path / "vocab.bpe"
        if not (encoder.is_file() and merges.is_file()):
            raise CommandError(
                f"フォルダ {path} に GPT-2 の encoder.json と vocab.bpe が"
                "ありません。"
            )
        gpt2 = ByteLevelBPETokenizer.from_gpt2_files(encoder, merges)
        return gpt2, f"GPT-2 の BPE（語彙 {gpt2.vocab_size}）"
    if not path.is_file():
        raise CommandError(
            f"--tokenizer {spec!r} は char でも bpe でもなく、そういう"
            "ファイルもありません。char、bpe、またはファイルのパスを"
            "指定してください。"
        )
    if path.suffix == ".json":
        codec = _load_tokenizer_json(path)
    else:
        codec = load_model(path).codec
    return (
        codec,
        f"{type(codec).__name__}（語彙 {codec.vocab_size}、{path}）",
    )


def _load_tokenizer_json(path: Path) -> Tokenizer:
    import json

    from easy_transformer.model_io import tokenizer_from_state

    text = _read_text(path, "トークナイザのファイル")
    try:
        kind = json.loads(text).get("type")
    except (json.JSONDecodeError, AttributeError):
        raise CommandError(
            f"{path} は Tokenizer.save で保存した JSON ではありません。"
        ) from None
    try:
        return tokenizer_from_state({"type": kind, "json": text})
    except ValueError as e:
        raise CommandError(f"{path} を読めません: {e}") from None


def cmd_tokenize(args: argparse.Namespace) -> int:
    codec, name = _load_tokenizer(args)
    ids = _encode(codec, args.text, "TEXT")
    print(f"トークナイザ: {name}")
    print(f"トークン数: {len(ids)}（文字数 {len(args.text)}）")
    print(f"ID の列: {ids}")
    print(f"{'ID':>6}  トークン")
    for i in ids:
        piece = codec.id_to_token[i]
        text = codec.decode([i])
        shown = repr(piece) if piece == text else f"{piece!r} = {text!r}"
        print(f"{i:>6}  {shown}")
    return 0


def _summarize(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def cmd_info(args: argparse.Namespace) -> int:
    import torch

    from easy_transformer.checkpoint import load_checkpoint

    path: Path = args.checkpoint
    state = load_checkpoint(path)
    size = path.stat().st_size / 1e6
    print(f"ファイル: {path}（{size:.2f} MB）")
    kind = state.get("kind")
    weights = state.get("model")
    if isinstance(weights, dict):
        # 共有した重み（埋め込みと出力層）は同じ記憶領域を指すので、
        # 1 度だけ数える
        unique = {
            t.data_ptr(): t
            for t in weights.values()
            if isinstance(t, torch.Tensor)
        }
        n = sum(t.numel() for t in unique.values())
        print(f"パラメータ数: {n:,}")
    if kind in ("seq2seq", "gpt"):
        name = {
            "seq2seq": "系列変換（エンコーダ・デコーダの Transformer）",
            "gpt": "言語モデル（GPT）",
        }[kind]
        print(f"種類: {name}")
        tok = state.get("tokenizer", {})
        print(f"語彙: {tok.get('type')}")
        sections = [
            ("モデルの設定", state.get("model_config", {})),
            ("学習の記録", state.get("meta", {})),
        ]
    elif "optimizer" in state:
        print(
            "種類: Trainer のチェックポイント（学習を再開するための状態）"
        )
        print(f"ステップ: {state.get('step')}")
        sections = [("学習の設定", state.get("config", {}))]
    else:
        print("種類: 不明（easy_transformer の形式だが、中身を知りません）")
        sections = [
            ("キー", {k: type(v).__name__ for k, v in state.items()})
        ]
    for title, entries in sections:
        print(f"{title}:")
        for key, value in entries.items():
            if isinstance(value, dict):
                print(f"  {key}:")
                for k, v in value.items():
                    print(f"    {k} = {_summarize(v)}")
            else:
                print(f"  {key} = {_summarize(value)}")
    return 0


# ---------------------------------------------------------------------
# 入口
# ---------------------------------------------------------------------


# 1 行のメッセージの長さの上限（torch の例外の長い詳細を切る）
_MAX_MESSAGE = 400


def _describe(error: BaseException) -> str:
    """利用者が直せる例外を、1 行のメッセージにする。"""
    if isinstance(error, FileNotFoundError) and error.filename:
        return f"{error.filename} がありません。パスを確かめてください。"
    text = one_line(str(error))
    if len(text) > _MAX_MESSAGE:
        text = (
            text[:_MAX_MESSAGE] + f"…（全文は環境変数 {DEBUG_ENV}=1 を"
            "付けて実行すると見られます）"
        )
    return text


# サブコマンドの名前 → 実行する関数
COMMANDS = {
    "train-task": cmd_train_task,
    "train-lm": cmd_train_lm,
    "generate": cmd_generate,
    "tokenize": cmd_tokenize,
    "info": cmd_info,
}


def main(argv: Sequence[str] | None = None) -> int:
    """コマンドを実行して終了コードを返す（0 が成功）。

    受け止めるのは、利用者が直せる誤り（CommandError、壊れた
    チェックポイントの CheckpointError、無いファイルの
    FileNotFoundError）だけ。ほかの例外はパッケージの不具合の
    おそれがあるので、トレースバックをそのまま見せる。
    """
    from easy_transformer.checkpoint import CheckpointError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error(
            "コマンドを指定してください（train-task、train-lm、generate、"
            "tokenize、info）"
        )
    try:
        code: int = COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"{PROG}: 中断しました。", file=sys.stderr)
        return 130
    except (CommandError, CheckpointError, FileNotFoundError) as e:
        if os.environ.get(DEBUG_ENV):
            raise
        prog = f"{PROG} {args.command}"
        print(f"{prog}: エラー: {one_line(_describe(e))}", file=sys.stderr)
        return e.exit_code if isinstance(e, CommandError) else 1
    return code
