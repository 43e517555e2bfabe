"""生成（デコード）の部品: ロジットの加工、サンプリング、ビームサーチ。

言語モデルは「ここまでの列を受け取り、次のトークンのロジットを返す関数」
にすぎない。文章を作るのは、その関数を繰り返し呼ぶ外側のループである。
このモジュールはそのループの部品だけを持ち、モデルには依存しない。
GPT もエンコーダ・デコーダも、最後の位置のロジット（ビームサーチでは
その対数確率）をここに渡す。

上から順に、ロジットを加工する関数（繰り返しペナルティ、top-k、top-p）、
それらを組み合わせて 1 トークンを選ぶ ``sample_next_token``、
複数の候補列を並行して探す ``beam_search``、長さの違うプロンプトを
左パディングでまとめて生成する ``generate_left_padded`` が並ぶ。
最後の 1 つだけは GPT の部品（埋め込み・層・出力層）を直接呼ぶ。
GPT の forward が位置の番号とマスクを受け取らないためである。
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from easy_transformer.attention import KVCache
from easy_transformer.embedding import check_length

if TYPE_CHECKING:
    # gpt.py がこのモジュールを import するので、型の検査のときだけ読む
    from easy_transformer.gpt import GPT

__all__ = [
    "apply_repetition_penalty",
    "beam_search",
    "fill_after_eos",
    "generate_left_padded",
    "left_pad",
    "position_ids",
    "sample_next_token",
    "top_k_filter",
    "top_p_filter",
]


def _check_batch_logits(logits: Tensor) -> None:
    """(batch, vocab) の 2 次元でなければ、直し方を添えて ValueError。"""
    if logits.dim() != 2:
        raise ValueError(
            "logits は (batch, vocab) の 2 次元テンソルにしてください"
            f"（受け取った形: {tuple(logits.shape)}）。"
            "1 本だけなら logits.unsqueeze(0) で (1, vocab) に、"
            "(batch, seq, vocab) なら logits[:, -1] で最後の位置を"
            "取り出してください。"
        )


def apply_repetition_penalty(
    logits: Tensor, prev_ids: Tensor, penalty: float
) -> Tensor:
    """これまでに出たトークンのロジットを下げる（繰り返しペナルティ）。

    CTRL（Keskar ら, 2019）の規則で、Hugging Face transformers の
    ``RepetitionPenaltyLogitsProcessor`` と同じ値を返す。
    ``prev_ids`` に現れた ID のロジットを、正なら ``penalty`` で割り、
    負なら ``penalty`` を掛ける。同じ ID が何度現れても適用は 1 回だけ。

    Args:
        logits: (batch, vocab) の次トークンのロジット。
        prev_ids: (batch, seq) のこれまでのトークン ID（プロンプトを含む）。
        penalty: 正の数。1.0 なら何もしない。1 より大きいと繰り返しを
            抑え、0 と 1 の間だと繰り返しを促す。

    Returns:
        (batch, vocab) の新しいテンソル。入力は書き換えない。
    """
    if not penalty > 0:
        raise ValueError(
            f"penalty は正の数にしてください（受け取った値: {penalty}）。"
            "1.0 でペナルティなし、1.2 前後がよく使われます。"
        )
    _check_batch_logits(logits)
    if prev_ids.dim() != 2 or prev_ids.shape[0] != logits.shape[0]:
        raise ValueError(
            "prev_ids は (batch, seq) の 2 次元で、batch を logits と"
            f"そろえてください（logits: {tuple(logits.shape)}, "
            f"prev_ids: {tuple(prev_ids.shape)}）。"
        )
    vocab = logits.shape[-1]
    if prev_ids.numel() > 0 and not (
        int(prev_ids.min()) >= 0 and int(prev_ids.max()) < vocab
    ):
        raise ValueError(
            f"prev_ids の ID は 0 以上 {vocab} 未満にしてください"
            "（語彙の外の ID があります）。"
        )
    # まず「出現したか」の表を作り、それから一度だけ適用する。
    # ID を 1 つずつ処理すると、2 回出た ID に 2 回掛かってしまう。
    seen = torch.zeros_like(logits, dtype=torch.bool)
    seen.scatter_(1, prev_ids.long(), True)
    # 割るだけだと負のロジットは 0 に近づき、確率がかえって上がる。
    # 符号で掛けると割るを使い分け、どちらも確率を下げる向きにする。
    penalized = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalized, logits)


def _check_k(k: int) -> None:
    if k <= 0:
        raise ValueError(
            "top-k の k は 1 以上の整数にしてください"
            f"（受け取った値: {k}）。"
            "フィルタを使わないときは top_k=None を渡してください。"
        )


def _check_p(p: float) -> None:
    if not 0.0 < p <= 1.0:
        raise ValueError(
            "top-p の p は 0 より大きく 1 以下にしてください"
            f"（受け取った値: {p}）。"
            "フィルタを使わないときは top_p=None を渡してください。"
        )


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """上位 k 個のロジットだけを残し、残りを -inf にする。

    最後の次元を語彙とみなし、先頭の次元は任意（(vocab,) でも
    (batch, vocab) でも (batch, seq, vocab) でもよい）。行ごとに独立に
    k 番目に大きい値をしきい値にして、それより小さいものを落とす。

    同点の扱い: k 番目の値と同点のトークンはすべて残す。そのため残る数が
    k を超えることがある。残る集合がトークンの並び順によらず値だけで
    決まるようにするためで、transformers の ``TopKLogitsWarper`` と同じ。
    k が語彙数より大きいときは語彙数とみなす（何も落とさない）。

    Returns:
        入力と同じ形の新しいテンソル。入力は書き換えない。
    """
    _check_k(k)
    k = min(k, logits.shape[-1])
    # [..., -1:] で「各行の」k 番目を取り、次元を残して行ごとに比べる。
    # [-1] と書くと先頭の次元（バッチの最後の行）を取ってしまう。
    threshold = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < threshold, -math.inf)


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """累積確率が p に届くまでの上位トークンだけを残す（nucleus）。

    確率の高い順に並べ、累積確率が初めて p 以上になったトークンまでを
    残す。言い換えると、そのトークンより上位の確率の和が p 未満のものを
    残す。最上位のトークンは p がどれだけ小さくても必ず残る。
    最後の次元を語彙とみなし、先頭の次元は任意。

    同点の扱い: 最後に残したトークンと同じロジットのトークンはすべて
    残す（``top_k_filter`` と同じく、結果を値だけで決めるため）。
    同点がなければ transformers の ``TopPLogitsWarper`` と一致する。

    Args:
        logits: (..., vocab) のロジット。
        p: (0, 1] の数。1.0 なら何も落とさない。

    Returns:
        入力と同じ形の新しいテンソル。入力は書き換えない。
    """
    _check_p(p)
    if p == 1.0:
        # 浮動小数点の累積和は 1 に届かないことも超えることもあるので、
        # 「全部残す」は計算せずに決める。
        return logits.clone()
    sorted_logits = torch.sort(logits, dim=-1, descending=True).values
    # 半精度のまま累積すると誤差が大きいので、float32 以上で計算する。
    dtype = torch.promote_types(logits.dtype, torch.float32)
    probs = sorted_logits.to(dtype).softmax(dim=-1)
    # 各トークンより「上位の」確率の和（自分を含まない累積和）。
    mass_before = F.pad(probs.cumsum(dim=-1)[..., :-1], (1, 0))
    # 降順なので mass_before は増えていき、残すのは先頭からの連続区間。
    # 先頭の mass_before は 0 < p なので、少なくとも 1 つは残る。
    n_keep = (mass_before < p).sum(dim=-1, keepdim=True).clamp(min=1)
    threshold = sorted_logits.gather(-1, n_keep - 1)
    return logits.masked_fill(logits < threshold, -math.inf)


def fill_after_eos(
    next_id: Tensor, done: Tensor, eos_id: int | None
) -> Tensor:
    """eos_id を出し終えた行の次のトークンを eos_id にし、done を更新する。

    done は行ごとの「もう eos_id を出したか」(batch,) の bool で、この
    関数がその場で書き換える。eos_id が None なら何もしない。
    """
    if eos_id is not None:
        next_id = next_id.masked_fill(done, eos_id)
        done |= next_id == eos_id
    return next_id


def sample_next_token(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    do_sample: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """次のトークンを 1 つずつ選ぶ（バッチの各行について）。

    ``do_sample=True`` のとき、温度で割る → top-k → top-p の順に加工し
    （transformers の ``generate`` と同じ順）、softmax した分布から引く。
    温度 T の分布は softmax(logits / T) で、T < 1 で尖り T > 1 で平らに
    なる。top-p は温度をかけた後の確率で数える。

    ``do_sample=False`` なら最大のロジットを選ぶ（貪欲法）。温度、top-k、
    top-p は最大のトークンを変えないので使わない（値の検査だけする）。
    最大が同点なら ID の小さいほうを選ぶ。

    Args:
        logits: (batch, vocab) の次トークンのロジット。
        temperature: 正の数。貪欲法にしたいなら 0 ではなく
            ``do_sample=False`` を使う。
        top_k: None なら top-k をかけない。
        top_p: None なら top-p をかけない。
        do_sample: False なら貪欲法。
        generator: 乱数生成器。結果を再現したいときに渡す。

    Returns:
        (batch,) の long テンソル（選んだトークン ID）。
    """
    _check_batch_logits(logits)
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(
            f"temperature は正の有限な数にしてください（受け取った値: "
            f"{temperature}）。貪欲法にしたいなら do_sample=False を"
            "渡してください。"
        )
    # 引数の誤りは do_sample=True に切り替えたときではなく、いま知らせる。
    if top_k is not None:
        _check_k(top_k)
    if top_p is not None:
        _check_p(top_p)
    if not do_sample:
        return logits.argmax(dim=-1)

    dtype = torch.promote_types(logits.dtype, torch.float32)
    logits = logits.to(dtype) / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def beam_search(
    step_fn: Callable[[Tensor], Tensor],
    prefix: Tensor,
    *,
    beam_size: int,
    max_new_tokens: int,
    eos_id: int | None = None,
    length_penalty: float = 1.0,
) -> Tensor:
    """ビームサーチで、スコアが最良の続きを探す。

    各ステップで、生きている（まだ完成していない）ビームをそれぞれ語彙の
    全トークンで伸ばし、候補のうち対数確率の和が大きい ``beam_size`` 個
    だけを次のステップに残す。全探索の木を幅 ``beam_size`` で刈り込んだ
    探索である。

    仮説（prefix に続けて生成した列 y_1 … y_L）のスコアは GNMT
    （Wu ら, 2016 の簡略形）や transformers と同じく::

        スコア = (log p(y_1) + … + log p(y_L)) / L ** length_penalty

    L は生成したトークン数（prefix を含まない、eos を含む）。
    length_penalty が大きいほど長い仮説が有利になり、0 なら和そのもの。

    仮説の完成:
        - eos で終わった候補は完成した仮説になり、それ以上は伸ばさない。
          完成した候補はビームの枠を使わない（枠は生きた候補だけで埋める）。
          返す列は eos を含む。
        - ``max_new_tokens`` 個に達した候補は、eos がなくても完成した
          仮説になる（eos_id=None なら、すべての仮説がこの長さになる）。
        - 返すのは、探索中に完成したすべての仮説のうちスコアが最大のもの
          （同点なら先に見つかったもの）。

    打ち切り: 対数確率は 0 以下なので、伸ばすほど和は下がる。生きている
    どのビームも、完成させたときのスコアの上限がこれまでの最良に届かなく
    なったら、そこで止める（分枝限定法）。上限は厳密なので、止めても
    結果は変わらない。そのため ``step_fn`` は正規化した対数確率
    （log_softmax の出力）を返すこと。
    ``beam_size`` が 語彙数 ** max_new_tokens 以上なら、すべての仮説を
    調べたことになり、結果は全探索の最良と一致する。

    Args:
        step_fn: (beams, seq) のトークン列を受け取り、各列の次のトークン
            の対数確率 (beams, vocab) を返す関数。
        prefix: (seq,) の 1 本の列（プロンプト、またはデコーダの開始記号）。
        beam_size: 残すビームの数。1 なら貪欲法と同じ。
        max_new_tokens: 生成するトークン数の上限。0 なら prefix を返す。
        eos_id: 終わりを表すトークン ID。None なら長さの上限まで生成する。
        length_penalty: 長さで割るときの指数。

    Returns:
        最良の列。prefix を含む 1 次元テンソル。
    """
    _check_beam_args(prefix, beam_size, max_new_tokens)
    beams = prefix.unsqueeze(0)  # (生きているビームの数, seq)
    sums = torch.zeros(1)  # 各ビームの対数確率の和
    best: Tensor | None = None
    best_score = -math.inf
    for step in range(1, max_new_tokens + 1):
        log_probs = step_fn(beams)
        _check_step_output(log_probs, beams.shape[0], eos_id)
        vocab = log_probs.shape[1]
        # cand[b, v]: ビーム b にトークン v を足した候補の対数確率の和
        cand = sums.to(log_probs)[:, None] + log_probs

        finished = torch.zeros_like(cand, dtype=torch.bool)
        if eos_id is not None:
            finished[:, eos_id] = True
        if step == max_new_tokens:
            finished[:] = True
        # 完成した候補は長さで正規化し、これまでの最良と比べる。
        scores = cand[finished] / step**length_penalty
        if scores.numel() > 0:
            i = int(scores.argmax())
            if best is None or float(scores[i]) > best_score:
                b, v = finished.nonzero()[i].tolist()
                best = torch.cat([beams[b], beams.new_tensor([v])])
                best_score = float(scores[i])

        # 完成していない候補のうち、和の大きい beam_size 個を残す。
        # 長さがそろっているので、ここでは正規化せず和で比べてよい。
        n_open = int((~finished).sum())
        if n_open == 0:
            break
        open_sums = cand.masked_fill(finished, -math.inf).flatten()
        sums, flat = open_sums.topk(min(beam_size, n_open))
        beams = torch.cat(
            [beams[flat // vocab], (flat % vocab)[:, None].to(beams)], dim=1
        )

        bound = _score_bound(sums, step, max_new_tokens, length_penalty)
        if best is not None and best_score >= bound:
            break
    return prefix.clone() if best is None else best


def _check_beam_args(
    prefix: Tensor, beam_size: int, max_new_tokens: int
) -> None:
    """beam_search の引数を確かめる。"""
    if beam_size < 1:
        raise ValueError(
            "beam_size は 1 以上にしてください"
            f"（受け取った値: {beam_size}）。"
        )
    if max_new_tokens < 0:
        raise ValueError(
            "max_new_tokens は 0 以上にしてください"
            f"（受け取った値: {max_new_tokens}）。"
        )
    if prefix.dim() != 1:
        raise ValueError(
            f"prefix は (seq,) の 1 本の列にしてください（受け取った形: "
            f"{tuple(prefix.shape)}）。(1, seq) なら prefix[0] を渡して"
            "ください。"
        )


def _check_step_output(
    log_probs: Tensor, n_beams: int, eos_id: int | None
) -> None:
    """step_fn の返した対数確率の形と、eos_id が語彙に入るかを確かめる。"""
    if log_probs.dim() != 2 or log_probs.shape[0] != n_beams:
        raise ValueError(
            f"step_fn は ({n_beams}, vocab) の対数確率を返して"
            f"ください（返った形: {tuple(log_probs.shape)}）。"
            "モデルの出力が (beams, seq, vocab) なら "
            "[:, -1].log_softmax(-1) を取ってください。"
        )
    vocab = log_probs.shape[1]
    if eos_id is not None and not 0 <= eos_id < vocab:
        raise ValueError(
            f"eos_id は 0 以上 {vocab} 未満にしてください"
            f"（受け取った値: {eos_id}）。"
        )


def _score_bound(
    sums: Tensor, step: int, max_new_tokens: int, length_penalty: float
) -> float:
    """生きているビームを完成させたときのスコアの上限。

    対数確率の和は伸ばすほど下がるので、上限は
    「今の和の最大 / 最も有利な長さ ** length_penalty」。
    最も有利な長さは、length_penalty > 0 なら最長の max_new_tokens、
    そうでなければ最短の step + 1。上限の計算を完成した仮説のスコアと
    同じ型の演算にして、丸めの向きもそろえる。
    """
    longest = max_new_tokens if length_penalty > 0 else step + 1
    return float(sums.max() / longest**length_penalty)


# ---- 長さの違う列のバッチ（左パディング） -----------------------------


def left_pad(
    prompts: Sequence[Sequence[int]], pad_id: int
) -> tuple[Tensor, Tensor]:
    """長さの違う ID の列を、左にパディングを詰めて 1 つの行列にする。

    生成では、各行の「最後の位置」のロジットから次のトークンを選ぶ。
    右にパディングを詰めると、最後の位置が行ごとに違う（短い行の最後は
    パディング）ので、左に詰めて実トークンの末尾を右端にそろえる。

    Returns:
        ``(ids, mask)``。どちらも (batch, 最長の長さ)。``mask`` は
        実トークンの位置が True の bool。
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError(
            "prompts には 1 トークン以上の列を 1 本以上渡してください。"
        )
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.bool)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(list(prompt))
        mask[row, width - len(prompt) :] = True
    return ids, mask


def position_ids(mask: Tensor) -> Tensor:
    """実トークンだけを 0, 1, 2, … と数えた位置の番号 (batch, seq)。

    左パディングで右へずれた行も、1 本だけで読ませたときと同じ位置の
    番号になる。パディングの位置は 0 にする（注意で隠すので値は効かない）。
    """
    return (mask.long().cumsum(dim=-1) - 1).clamp(min=0)


def _forward_padded(
    model: GPT,
    ids: Tensor,
    positions: Tensor,
    key_mask: Tensor,
    caches: list[KVCache],
) -> Tensor:
    """位置の番号とパディングのマスクを指定して GPT を 1 回動かす。

    ids と positions は今回読ませる部分 (batch, q_len)、key_mask は
    キャッシュの分を含むこれまでの全体 (batch, k_len)。
    GPT.forward と同じ計算を、位置埋め込みの番号を行ごとに変えて行う。
    """
    pos_emb = getattr(model.pos_emb, "embed", None)
    if not isinstance(pos_emb, torch.nn.Embedding):
        raise TypeError(
            "generate_left_padded は学習する位置埋め込み（GPT-2 の方式）の"
            "GPT にだけ使えます。"
        )
    x = model.dropout(model.tok_emb(ids) + pos_emb(positions))
    q_len, k_len = ids.size(1), key_mask.size(1)
    # パディングのキーを隠す。ただしどのクエリも自分自身は見えるように
    # する。パディングの位置のクエリは見えるキーが 1 つも無くなり、
    # softmax が 0/0 になるのを避けるため（その出力は誰も読まない）。
    self_key = torch.zeros(q_len, k_len, dtype=torch.bool)
    self_key[:, k_len - q_len :] = torch.eye(q_len, dtype=torch.bool)
    mask = key_mask[:, None, None, :] | self_key.to(ids.device)
    for block, cache in zip(model.blocks, caches, strict=True):
        x = block(x, mask=mask, cache=cache)
    logits: Tensor = model.lm_head(model.norm(x))
    return logits


@torch.no_grad()
def generate_left_padded(
    model: GPT,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    *,
    pad_id: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    do_sample: bool = False,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """長さの違うプロンプトを 1 つのバッチにして、続きを生成する。

    左パディング（``left_pad``）、パディングのキーを隠すマスク、実トークン
    だけを数えた位置の番号（``position_ids``）を使い、KV キャッシュで
    1 トークンずつ進める。貪欲法なら、各行の結果は 1 本ずつ
    ``GPT.generate`` で作った結果と同じになる（浮動小数点の計算の順が
    違うので、ロジットは丸めの範囲で違いうる）。

    eos_id を出した行は、残りを eos_id で埋める（``GPT.generate`` と同じ）。

    Returns:
        行ごとの ID のリスト（パディングを除き、プロンプトを含む）。
    """
    ids, mask = left_pad(prompts, pad_id)
    longest = max(len(p) for p in prompts)
    check_length(longest + max_new_tokens, model.config.block_size)
    device = next(model.parameters()).device
    ids, mask = ids.to(device), mask.to(device)
    positions = position_ids(mask)
    caches = [KVCache() for _ in model.blocks]
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    new_ids, new_pos = ids, positions
    for _ in range(max_new_tokens):
        logits = _forward_padded(model, new_ids, new_pos, mask, caches)
        next_id = sample_next_token(
            logits[:, -1],
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            do_sample=do_sample,
            generator=generator,
        )
        next_id = fill_after_eos(next_id, done, eos_id)
        new_ids = next_id[:, None]
        new_pos = positions[:, -1:] + 1
        ids = torch.cat([ids, new_ids], dim=1)
        positions = torch.cat([positions, new_pos], dim=1)
        mask = torch.cat(
            [mask, torch.ones_like(new_ids, dtype=torch.bool)], 1
        )
        if done.all():
            break
    return [row[keep].tolist() for row, keep in zip(ids, mask, strict=True)]
