"""コマンドライン（python -m easy_transformer）のテスト。

サブコマンドはどれも別プロセスで実際に起動する。学習は極小の設定
（--tiny）で、学習したモデルはモジュールの中で使い回す。エラーの
ときは「1 行のメッセージ、0 でない終了コード、トレースバックなし」を
確かめる。細かなエラーの場合分けは、同じプロセスで main() を呼んで
確かめる（torch の読み込みを繰り返さないため）。
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from easy_transformer import _argparse_ja, cli
from easy_transformer.checkpoint import save_checkpoint
from easy_transformer.data import data_path
from easy_transformer.gpt import GPT
from easy_transformer.model_io import load_model
from easy_transformer.seq2seq_experiment import TASK_CONFIGS

ROOT = Path(__file__).resolve().parent.parent
# 同梱した GPT-2 の語彙（SHA-256 を確かめる。data/README.md）
GPT2_DIR = data_path("gpt2/encoder.json").parent
TEXT = "to be or not to be, that is the question.\n" * 40


def run_cli(
    *args: str, cwd: Path, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CI": "1"}  # 進捗バーを出さない
    env.pop(cli.DEBUG_ENV, None)
    result = subprocess.run(
        [sys.executable, "-m", "easy_transformer", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], *words: str
) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "エラー: " in lines[0]
    for word in words:
        assert word in lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli")
    (path / "text.txt").write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def task_model(workdir: Path) -> Path:
    result = run_cli(
        "train-task", "rpn", "--tiny", "--seed", "3", cwd=workdir
    )
    assert "テストの完全一致率" in result.stdout
    out = workdir / "runs" / "rpn"
    return out / "model.pt"


@pytest.fixture(scope="module")
def lm_model(workdir: Path) -> Path:
    result = run_cli(
        "train-lm",
        "--data",
        "text.txt",
        "--tiny",
        "--out",
        "lm",
        cwd=workdir,
    )
    assert "検証の損失" in result.stdout
    return workdir / "lm" / "model.pt"


def test_task_names_match_seq2seq_experiment() -> None:
    assert list(cli.TASK_DESCRIPTIONS) == list(TASK_CONFIGS)


def test_help_is_japanese_and_lists_commands(tmp_path: Path) -> None:
    top = run_cli("--help", cwd=tmp_path).stdout
    assert top.startswith("使い方: ")
    for command in [
        "train-task",
        "train-lm",
        "generate",
        "tokenize",
        "info",
    ]:
        assert command in top
    sub = run_cli("train-task", "--help", cwd=tmp_path).stdout
    assert "使い方: python -m easy_transformer train-task" in sub
    assert "オプション:" in sub and "例:" in sub
    assert "逆ポーランド記法" in sub


def test_train_task_writes_results(task_model: Path) -> None:
    out = task_model.parent
    result = json.loads((out / "result.json").read_text("utf-8"))
    assert result["task"] == "rpn" and result["seed"] == 3
    assert (out / "metrics.jsonl").read_text("utf-8").count("\n") >= 1


def test_generate_and_info_with_a_task_model(task_model: Path) -> None:
    cwd = task_model.parent
    out = run_cli(
        "generate",
        "--checkpoint",
        "model.pt",
        "--prompt",
        "(x-2)*3",
        "--max-new-tokens",
        "5",
        cwd=cwd,
    )
    assert len(out.stdout.splitlines()) == 1
    info = run_cli("info", "model.pt", cwd=cwd).stdout
    assert "系列変換" in info
    assert "task = rpn" in info
    assert "パラメータ数: " in info


def test_generate_with_a_language_model(lm_model: Path) -> None:
    out = run_cli(
        "generate",
        "--checkpoint",
        "model.pt",
        "--prompt",
        "to be",
        "--max-new-tokens",
        "10",
        "--num-samples",
        "2",
        "--temperature",
        "0.8",
        "--top-k",
        "5",
        "--top-p",
        "0.9",
        cwd=lm_model.parent,
    ).stdout
    assert out.count("--- ") == 2 and out.count("to be") >= 2


def test_train_lm_minilang(tmp_path: Path) -> None:
    result = run_cli(
        "train-lm",
        "--minilang",
        "--tiny",
        "--temperature",
        "0.7",
        cwd=tmp_path,
    )
    assert "パースできたプログラム" in result.stdout
    assert "温度 0.7" in result.stdout
    assert (tmp_path / "runs" / "minilang" / "model.pt").exists()


# -- 同じプロセスで main() を呼ぶ（torch の読み込みを繰り返さない） -----


def call_main(
    capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """main を呼び、(終了コード, 標準出力, 標準エラー) を返す。"""
    try:
        code = cli.main(list(args))
    except SystemExit as e:  # argparse の誤りと --help
        code = int(e.code or 0)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err.strip()


def test_beam_search_and_info_of_a_language_model(
    capsys: pytest.CaptureFixture[str], task_model: Path, lm_model: Path
) -> None:
    code, out, _ = call_main(
        capsys,
        "generate",
        "--checkpoint",
        str(task_model),
        "--prompt",
        "x*2",
        "--beam",
        "2",
        "--max-new-tokens",
        "5",
    )
    assert code == 0 and len(out.splitlines()) == 1
    code, out, _ = call_main(capsys, "info", str(lm_model))
    assert code == 0 and "言語モデル（GPT）" in out


def test_tokenize(
    capsys: pytest.CaptureFixture[str], workdir: Path, lm_model: Path
) -> None:
    code, out, _ = call_main(
        capsys, "tokenize", "--tokenizer", str(lm_model), "to be"
    )
    assert code == 0 and "トークン数: 5" in out
    code, out, _ = call_main(
        capsys,
        "tokenize",
        "--tokenizer",
        "bpe",
        "--train-file",
        str(workdir / "text.txt"),
        "--vocab-size",
        "270",
        "to be",
    )
    assert code == 0
    assert "ByteLevelBPETokenizer（語彙 270）" in out
    # バイトレベルの表記（Ġ は空白のバイト）と、元の文字列を並べる
    assert "'Ġbe' = ' be'" in out
    code, out, _ = call_main(capsys, "tokenize", "x = 1")
    assert code == 0 and "ID の列: [" in out


def test_tokenize_gpt2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call_main(
        capsys, "tokenize", "--tokenizer", str(GPT2_DIR), "Hello world"
    )
    assert code == 0 and "[15496, 995]" in out


# -- エラー: 別プロセスで、トレースバックが出ないこと -------------------


def test_random_bytes_checkpoint_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "random.pt").write_bytes(os.urandom(4096))
    result = run_cli("info", "random.pt", cwd=tmp_path, ok=False)
    assert_one_line_error(result, "random.pt", "壊れている")
    assert result.returncode == 1


def test_bad_argument_is_one_line_error(tmp_path: Path) -> None:
    result = run_cli(
        "train-task", "rpn", "--steps", "abc", cwd=tmp_path, ok=False
    )
    assert_one_line_error(result, "--steps", "1 以上の整数")
    assert result.returncode == 2
    result = run_cli("train-task", "translate", cwd=tmp_path, ok=False)
    assert_one_line_error(result, "'translate' は選べません", "rpn")


# -- エラー: 同じプロセスで main() を呼んで、場合分けを確かめる ---------


def assert_one_line(err: str) -> None:
    assert len(err.splitlines()) == 1, err
    assert "エラー: " in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), ["コマンドを指定してください"]),
        (("train-lm",), ["--data --minilang のどれか"]),
        (("train-lm", "--data", "a", "--minilang"), ["一緒に使えません"]),
        (("generate", "--checkpoint", "x", "--top-p", "2"), ["1 以下"]),
        (
            ("generate", "--checkpoint", "x", "--temperature", "0"),
            ["0 より"],
        ),
        (("generate",), ["次の引数が要ります: --checkpoint"]),
        (("info", "a", "b"), ["知らない引数です: b"]),
        (("tokenize", "x", "--tokenizer"), ["値を 1 つ"]),
    ],
)
def test_argument_errors(
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    words: list[str],
) -> None:
    code, _, err = call_main(capsys, *args)
    assert_one_line(err)
    assert code == 2
    assert "--help" in err
    for word in words:
        assert word in err


def test_runtime_errors(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "random.pt").write_bytes(os.urandom(1000))
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00abc")
    save_checkpoint(tmp_path / "trainer.pt", {"model": {}, "step": 3})
    cases = [
        (("info", "missing.pt"), "パスを確かめて"),
        (
            ("generate", "--checkpoint", "nope.pt", "--prompt", "1"),
            "nope.pt",
        ),
        (("generate", "--checkpoint", "random.pt"), "壊れている"),
        (("generate", "--checkpoint", "trainer.pt"), "model.pt を指定"),
        (("train-lm", "--data", "missing.txt"), "missing.txt がありません"),
        (("train-lm", "--data", "binary.txt"), "UTF-8"),
        (("train-lm", "--data", "."), "フォルダです"),
        (("train-task", "copy", "--device", "nonsense"), "デバイス"),
        (("tokenize", "--tokenizer", "missing.json", "x"), "char でも"),
        (
            ("tokenize", "--tokenizer", "bpe", "--vocab-size", "10", "x"),
            "256 以上",
        ),
    ]
    for args, word in cases:
        code, _, err = call_main(capsys, *args)
        assert_one_line(err)
        assert code == 1, (args, err)
        assert word in err, (args, err)
    # 引数の組み合わせの誤りは、argparse の誤りと同じ終了コード 2
    code, _, err = call_main(
        capsys, "train-lm", "--minilang", "--tokenizer", "bpe"
    )
    assert_one_line(err)
    assert code == 2
    assert "--data と" in err


def test_runtime_errors_on_a_task_model(
    capsys: pytest.CaptureFixture[str], task_model: Path
) -> None:
    code, _, err = call_main(
        capsys, "generate", "--checkpoint", str(task_model)
    )
    assert code == 2 and "--prompt" in err  # 引数の誤り
    code, _, err = call_main(
        capsys,
        "generate",
        "--checkpoint",
        str(task_model),
        "--prompt",
        "(a-2)",
    )
    assert code == 1 and "'a'" in err and "使える文字" in err


def test_wrap_uses_display_width() -> None:
    text = "系列変換の課題（コピー・反転・ソート）で Transformer を学習する"
    lines = _argparse_ja._wrap(text, 20)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    # 行頭に置けない約物だけは、行末に 1 文字はみ出してよい（ぶら下げ）
    assert all(_argparse_ja.display_width(line) <= 22 for line in lines)
    assert not any(line.startswith(("、", "）")) for line in lines)


# --- 設定ファイルと --set ---------------------------------------------


@pytest.fixture
def text_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path を作業フォルダにし、学習に使う text.txt を置く。"""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text.txt").write_text(TEXT, encoding="utf-8")
    return tmp_path


@pytest.mark.usefixtures("text_dir")
def test_config_file_and_set_precedence(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """既定 < --config < --steps < --set の順に、後のものが勝つ。"""
    (tmp_path / "small.toml").write_text(
        "# 小さなモデル\nn_layers = 2\nd_model = 32\nmax_steps = 5\n"
        "lr = 1\nbias = false\n",
        encoding="utf-8",
    )
    code, _, err = call_main(
        capsys,
        "train-lm",
        "--data",
        "text.txt",
        "--tiny",
        "--no-progress",
        "--config",
        "small.toml",
        "--steps",
        "4",
        "--set",
        "d_model=24",
        "--set",
        "max_steps=3",
    )
    assert code == 0, err
    saved = json.loads((tmp_path / "runs/lm-text/result.json").read_text())
    cfg = saved["config"]
    assert cfg["n_layers"] == 2  # --config
    assert cfg["d_model"] == 24  # --set が --config に勝つ
    assert cfg["max_steps"] == 3  # --set が --steps に勝つ
    assert cfg["lr"] == 1.0 and isinstance(cfg["lr"], float)
    assert cfg["bias"] is False
    assert cfg["n_heads"] == 2  # 書かなかった項目は --tiny の既定のまま
    assert cfg["position"] == "learned"
    assert saved["steps"] == 3


@pytest.mark.usefixtures("text_dir")
def test_set_position_rope_trains_a_gpt_with_rope(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """--set position=rope で、位置埋め込みの表の無い GPT を学習する。"""
    code, _, err = call_main(
        capsys,
        "train-lm",
        "--data",
        "text.txt",
        "--tiny",
        "--no-progress",
        "--set",
        "position=rope",
        "--set",
        "max_steps=2",
    )
    assert code == 0, err
    loaded = load_model(tmp_path / "runs/lm-text/model.pt")
    assert isinstance(loaded.model, GPT)
    assert loaded.model.config.position == "rope"
    assert loaded.model.pos_emb is None  # 位置埋め込みの表が無い


@pytest.mark.parametrize(
    ("toml", "sets", "words"),
    [
        (
            None,
            ["n_layer=6"],
            [
                "--set の項目 'n_layer' はありません",
                "もしかして n_layers",
                "設定できる項目: batch_size, beta2, bias, block_size",
            ],
        ),
        (
            None,
            ["n_layers=six"],
            ["n_layers の値 'six' は読めません", "整数を指定してください"],
        ),
        (None, ["lr=fast"], ["lr の値 'fast'", "数を指定してください"]),
        (None, ["bias=maybe"], ["真偽値（true か false）"]),
        (None, ["n_layers"], ["--set key=value の形で"]),
        (None, ["n_heads=3"], ["d_model=16 は n_heads=3 で割り切れません"]),
        (None, ["max_steps=0"], ["max_steps=0 は使えません"]),
        (
            None,
            ["position=alibi"],
            ["position='alibi' は知りません", "learned か rope"],
        ),
        (
            'n_layers = "6"\n',
            [],
            ["設定ファイル bad.toml の n_layers の値 '6' は文字列です"],
        ),
        ("d_modle = 64\n", [], ["bad.toml の項目 'd_modle'", "d_model"]),
        ("[model]\nn_layers = 2\n", [], ["表 [model] は使えません"]),
        ("n_layers = = 2\n", [], ["TOML として読めません"]),
    ],
)
@pytest.mark.usefixtures("text_dir")
def test_setting_errors_are_one_line_with_exit_code_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    toml: str | None,
    sets: list[str],
    words: list[str],
) -> None:
    args = ["train-lm", "--data", "text.txt", "--tiny"]
    if toml is not None:
        (tmp_path / "bad.toml").write_text(toml, encoding="utf-8")
        args += ["--config", "bad.toml"]
    for item in sets:
        args += ["--set", item]
    code, _, err = call_main(capsys, *args)
    assert_one_line(err)
    assert code == 2
    for word in words:
        assert word in err, err
    assert not (tmp_path / "runs").exists()  # 学習は始めない


def test_train_task_accepts_settings_of_seq2seq_config(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = call_main(
        capsys, "train-task", "copy", "--tiny", "--set", "d_ff=48"
    )
    assert code == 0, err
    saved = json.loads((tmp_path / "runs/copy/result.json").read_text())
    assert saved["config"]["d_ff"] == 48
    # LMConfig にしか無い項目は、系列変換では知らない項目
    code, _, err = call_main(
        capsys, "train-task", "copy", "--tiny", "--set", "block_size=8"
    )
    assert code == 2
    assert "'block_size' はありません" in err


# --- 再開 ---------------------------------------------------------------


# --steps を増やして再開すると、Trainer が設定の違いを警告する（意図どおり）
@pytest.mark.filterwarnings(
    "ignore:チェックポイントを作ったときと設定が違います"
)
@pytest.mark.usefixtures("text_dir")
def test_existing_checkpoint_needs_resume_or_overwrite(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    base = ["train-lm", "--data", "text.txt", "--tiny", "--no-progress"]
    assert call_main(capsys, *base)[0] == 0
    assert (tmp_path / "runs/lm-text/checkpoint.pt").exists()

    # 黙って上書きも再開もしない
    code, _, err = call_main(capsys, *base)
    assert_one_line(err)
    assert code == 2
    assert "checkpoint.pt" in err
    assert "--resume" in err and "--overwrite" in err

    # --resume: 途中経過から続ける（ステップ数を増やして続きを学習）
    code, out, err = call_main(capsys, *base, "--resume", "--steps", "9")
    assert code == 0, err
    records = [
        json.loads(line)
        for line in (tmp_path / "runs/lm-text/metrics.jsonl")
        .read_text()
        .splitlines()
    ]
    assert "学習: 9 ステップ" in out
    assert records[-1]["step"] == 9
    # 最初の 6 ステップの記録は残っている（続きから学習した）
    assert any(r["step"] <= 6 for r in records)

    # --overwrite: 最初から学習し直す（前の記録は消える）
    code, out, err = call_main(capsys, *base, "--overwrite", "--steps", "2")
    assert code == 0, err
    saved = json.loads((tmp_path / "runs/lm-text/result.json").read_text())
    assert saved["steps"] == 2
    steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "runs/lm-text/metrics.jsonl")
        .read_text()
        .splitlines()
    ]
    assert max(steps) == 2

    # 両方は選べない
    code, _, err = call_main(capsys, *base, "--resume", "--overwrite")
    assert code == 2


# --- 生成の停止文字列と繰り返しペナルティ --------------------------------


def test_generate_stop_strings(
    capsys: pytest.CaptureFixture[str], lm_model: Path
) -> None:
    args = ["generate", "--checkpoint", str(lm_model), "--prompt", "to"]
    args += ["--max-new-tokens", "120", "--num-samples", "3", "--seed", "1"]
    code, full, _ = call_main(capsys, *args)
    assert code == 0
    code, cut, _ = call_main(capsys, *args, "--stop", "\\n", "--stop", "zz")
    assert code == 0
    samples = cut.split("\n")
    # 「--- i ---」と生成した文字列が交互に並び、どれも改行を含まない
    bodies = [s for s in samples if s and not s.startswith("---")]
    assert len(bodies) == 3
    full_bodies = full.split("--- ")[1:]
    for body, whole in zip(bodies, full_bodies, strict=True):
        text = whole.split("\n", 1)[1]  # 見出しの行を除く
        # 止めなかった出力の、最初の改行の手前までと同じ
        assert body == text.split("\n")[0]


def test_generate_repetition_penalty_reaches_the_model(
    capsys: pytest.CaptureFixture[str],
    lm_model: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from easy_transformer.gpt import GPT

    seen: list[float] = []
    original = GPT.generate

    def spy(self: GPT, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["repetition_penalty"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GPT, "generate", spy)
    code, _, err = call_main(
        capsys,
        "generate",
        "--checkpoint",
        str(lm_model),
        "--repetition-penalty",
        "1.3",
        "--max-new-tokens",
        "5",
    )
    assert code == 0, err
    assert seen and set(seen) == {1.3}


def test_stop_and_penalty_are_for_gpt_only(
    capsys: pytest.CaptureFixture[str], task_model: Path
) -> None:
    code, _, err = call_main(
        capsys,
        "generate",
        "--checkpoint",
        str(task_model),
        "--prompt",
        "1+2",
        "--stop",
        "x",
    )
    assert code == 2
    assert "GPT のモデルで使います" in err
