"""A vLLM v1 logits processor for transformers' ``no_repeat_ngram_size`` (imports vLLM).

Only imported inside vLLM's engine (by qualified name, see
:data:`llamo_plugin.backends.vllm.NO_REPEAT_NGRAM_PROCESSOR`). A request enables it with
``SamplingParams(extra_args={NGRAM_ARG: n})``; the rule, on generated tokens only, is
:func:`llamo_plugin.backends.vllm.banned_next_tokens`.
"""

from __future__ import annotations

from typing import Any

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.interface import MoveDirectionality

from llamo_plugin.backends.vllm import NGRAM_ARG, banned_next_tokens


class NoRepeatNGramLogitsProcessor(LogitsProcessor):
    """Per-request no-repeat-ngram ban; state is each request's live output-token list."""

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        self.requests: dict[int, tuple[int, list[int]]] = {}

    def is_argmax_invariant(self) -> bool:
        return False  # banning tokens changes the argmax

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        if batch_update is None:
            return
        for index in batch_update.removed:
            self.requests.pop(index, None)
        for index, params, _prompt_ids, output_ids in batch_update.added:
            extra = getattr(params, "extra_args", None) or {}
            n = int(extra.get(NGRAM_ARG, 0))
            if n > 0:
                self.requests[index] = (n, output_ids)  # vLLM appends to this very list
            else:
                self.requests.pop(index, None)
        for a, b, direction in batch_update.moved:
            moved_a, moved_b = self.requests.pop(a, None), self.requests.pop(b, None)
            if moved_a is not None:
                self.requests[b] = moved_a
            if moved_b is not None and direction == MoveDirectionality.SWAP:
                self.requests[a] = moved_b

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        for index, (n, output_ids) in self.requests.items():
            banned = banned_next_tokens(output_ids, n)
            if banned:
                logits[index, sorted(banned)] = float("-inf")
        return logits
