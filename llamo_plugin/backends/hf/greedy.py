"""The greedy decoding loop of the ``hf`` backend and its logits rules.

:func:`greedy_loop` drives any LM state through one-token steps (the fast Llama decoder,
:mod:`llamo_plugin.backends.hf.llama_decoder`, supplies ``step`` and ``drop``). It applies
the logits rules of transformers' ``generate`` in the same order — repetition penalty, then
the no-repeat-ngram ban, on the generated tokens only (what ``generate`` does from
``inputs_embeds``) — and takes the same argmax, but drops finished rows from the batch as
soon as any has finished (``generate`` keeps every row running until the last one stops).
Tokens equal ``generate``'s (tested; documented exceptions are floating-point ties).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from llamo_plugin.config import DecodeConfig

if TYPE_CHECKING:
    from llamo_plugin.backends.hf.copy_bias import PromptCopy
    from llamo_plugin.model.answer_format import AnswerFormat


def apply_repetition_penalty(
    scores: torch.Tensor, generated: torch.Tensor, penalty: float
) -> torch.Tensor:
    """transformers' rule: logits of already generated tokens are divided by ``penalty`` if
    positive, multiplied if negative. ``scores [B, V]``; ``generated [B, T]`` (T may be 0)."""
    if penalty == 1.0 or generated.shape[1] == 0:
        return scores
    picked = torch.gather(scores, 1, generated)
    picked = torch.where(picked < 0, picked * penalty, picked / penalty)
    return scores.scatter(1, generated, picked)


def ban_repeated_ngrams(scores: torch.Tensor, generated: torch.Tensor, n: int) -> torch.Tensor:
    """Set to -inf every token that would complete an n-gram already in ``generated`` (rows
    are independent). ``scores [B, V]``; ``generated [B, T]``."""
    steps = generated.shape[1]
    if n <= 0 or steps == 0:
        return scores
    if n == 1:
        return scores.scatter(1, generated, float("-inf"))
    if steps < n:  # no complete n-gram yet
        return scores
    windows = generated.unfold(1, n, 1)  # [B, T-n+1, n]
    prefix = generated[:, steps - n + 1 :]  # [B, n-1]
    hit = (windows[:, :, :-1] == prefix[:, None, :]).all(dim=2)  # [B, T-n+1]
    rows, cols = torch.nonzero(hit, as_tuple=True)
    if rows.numel():
        scores = scores.clone()
        scores[rows, windows[rows, cols, -1]] = float("-inf")
    return scores


def next_tokens(
    logits: torch.Tensor,
    generated: torch.Tensor,
    decode: DecodeConfig,
    answer_format: AnswerFormat | None = None,
    copy: PromptCopy | None = None,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """The greedy choice of every running row: repetition penalty, then the n-gram ban, on
    the generated tokens (``generate``'s order), then the copy bias (if any; ``rows`` are
    the original rows of the running ones; a ``free`` copy exempts its tokens from the
    rules), then the answer format's mask (if any), then argmax (or, with
    ``decode.answer_choice == "median"``, the format's median choice).
    ``logits [B, V]`` -> ``[B]``."""
    raw = logits.float()
    scores = apply_repetition_penalty(raw, generated, decode.repetition_penalty)
    scores = ban_repeated_ngrams(scores, generated, decode.no_repeat_ngram_size)
    if copy is not None and rows is not None:
        scores = copy.apply(scores, rows, generated, raw)
    if answer_format is not None:
        if decode.answer_choice == "median":
            return answer_format.median_tokens(scores, generated)
        scores = answer_format.mask_scores(scores, generated)
    return scores.argmax(dim=-1)


def greedy_loop(
    logits: torch.Tensor,
    next_pos: torch.Tensor,
    decode: DecodeConfig,
    eos_token_id: int,
    *,
    step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    drop: Callable[[torch.Tensor], torch.Tensor],
    should_stop: Callable[[], bool] | None = None,
    answer_format: AnswerFormat | None = None,
    copy: PromptCopy | None = None,
) -> tuple[list[list[int]], bool]:
    """The greedy decoding loop after prefill, for any LM forward.

    Args:
        logits: ``[B, V]`` logits of each prompt's last position.
        next_pos: ``[B]`` position id of each row's first generated token.
        step: ``step(tokens [b], positions [b]) -> logits [b, V]``: feed one token per
            running row (the KV cache holds everything before it).
        drop: ``drop(finished [b] bool) -> order [b']``: remove finished rows from the LM
            state; ``order`` lists the surviving running rows (indices into the old order)
            in their new order. Called after every step in which a row finished.
        should_stop: polled before every step; once true the loop returns (cancelled).
        answer_format: keep every answer inside this format (constrained decoding).
        copy: copy-biased decoding state over the rows' prompts (or None).

    Returns:
        (generated ids per row, up to and including EOS when reached; cancelled flag).
    """
    batch, device = logits.shape[0], logits.device
    rows = torch.arange(batch, device=device)  # original row of each running row
    generated = torch.empty(batch, 0, dtype=torch.long, device=device)
    results: list[list[int]] = [[] for _ in range(batch)]
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    for i in range(decode.max_new_tokens):
        if should_stop is not None and should_stop():
            return results, True
        tokens = next_tokens(logits, generated, decode, answer_format, copy, rows)  # [b]
        for r, t, done in zip(rows.tolist(), tokens.tolist(), finished.tolist(), strict=True):
            if not done:
                results[r].append(t)
        finished = finished | (tokens == eos_token_id)
        if bool(finished.all()) or i == decode.max_new_tokens - 1:
            break
        generated = torch.cat([generated, tokens[:, None]], dim=1)
        if bool(finished.any()):
            order = drop(finished)
            rows, generated, next_pos = rows[order], generated[order], next_pos[order]
            tokens, finished = tokens[order], finished[order]
        logits = step(tokens, next_pos)
        next_pos = next_pos + 1
    return results, False
