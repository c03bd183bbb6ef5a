"""Batched greedy decoding with row compaction (the ``hf`` backend's fast path).

Hugging Face ``generate`` keeps every row of a batch running until the last one stops, so a
batch of descriptions whose lengths range from 20 to 250 tokens spends most of its steps on
rows that are already finished. This loop makes the same model calls as ``generate`` (one
prefill over the left-padded prompt embeddings, then one token per step with the KV cache),
applies the same logits rules in the same order — repetition penalty, then the no-repeat-ngram
ban, on the generated tokens only (what ``generate`` does from ``inputs_embeds``) — and takes
the same argmax, but drops finished rows from the batch (and from the KV cache) once enough
of them have finished. Tokens equal ``generate``'s (tested; documented exceptions are
floating-point ties).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from llamo_plugin.config import DecodeConfig
from llamo_plugin.model.kv_cache import preallocated_cache

if TYPE_CHECKING:
    from llamo_plugin.model.answer_format import AnswerFormat
    from llamo_plugin.model.copy_bias import PromptCopy


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
    the original rows of the running ones), then the answer format's mask (if any),
    then argmax (or, with ``decode.answer_choice == "median"``, the format's median choice).
    ``logits [B, V]`` -> ``[B]``."""
    scores = apply_repetition_penalty(logits.float(), generated, decode.repetition_penalty)
    scores = ban_repeated_ngrams(scores, generated, decode.no_repeat_ngram_size)
    if copy is not None and rows is not None:
        scores = copy.apply(scores, rows, generated)
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
    compact_fraction: float = 0.25,
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
            in their new order.
        compact_fraction: call ``drop`` once at least this fraction of the running rows
            has finished.
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
        if bool(finished.any()) and finished.float().mean() >= compact_fraction:
            order = drop(finished)
            rows, generated, next_pos = rows[order], generated[order], next_pos[order]
            tokens, finished = tokens[order], finished[order]
        logits = step(tokens, next_pos)
        next_pos = next_pos + 1
    return results, False


@torch.inference_mode()
def greedy_decode(
    lm: Any,
    inputs_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    decode: DecodeConfig,
    eos_token_id: int,
    *,
    should_stop: Callable[[], bool] | None = None,
    compact_fraction: float = 0.25,
    answer_format: AnswerFormat | None = None,
    copy: PromptCopy | None = None,
) -> tuple[list[list[int]], bool]:
    """Greedy-decode a left-padded batch with the transformers forward (:func:`greedy_loop`).

    Args:
        inputs_embeds: ``[B, L, D]`` prompt embeddings (graph tokens spliced in).
        attention_mask: ``[B, L]``, 0 at left padding.
        compact_fraction: drop finished rows once at least this fraction of the running
            batch has finished (each compaction copies the KV cache once).

    Returns:
        (generated ids per row, up to and including EOS when reached; cancelled flag).
    """
    length = attention_mask.shape[1]
    cache = preallocated_cache(lm, length + decode.max_new_tokens)
    position_ids = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)
    out = lm(
        inputs_embeds=inputs_embeds,
        attention_mask=attention_mask,
        position_ids=position_ids,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    state = {"mask": attention_mask}
    embed = lm.get_input_embeddings()

    def drop(finished: torch.Tensor) -> torch.Tensor:
        keep = torch.nonzero(~finished, as_tuple=True)[0]
        cache.batch_select_indices(keep)
        state["mask"] = state["mask"][keep]
        return keep

    def step(tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        mask = state["mask"]
        state["mask"] = mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        out = lm(
            inputs_embeds=embed(tokens)[:, None, :],
            attention_mask=mask,
            position_ids=positions[:, None],
            past_key_values=cache,
            use_cache=True,
        )
        return out.logits[:, -1, :]

    return greedy_loop(
        out.logits[:, -1, :],
        position_ids[:, -1] + 1,
        decode,
        eos_token_id,
        step=step,
        drop=drop,
        should_stop=should_stop,
        compact_fraction=compact_fraction,
        answer_format=answer_format,
        copy=copy,
    )
