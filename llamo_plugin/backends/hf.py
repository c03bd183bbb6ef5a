"""The ``hf`` backend: a transformers causal LM on CPU or CUDA, batched.

Prompts are sorted by length into buckets (less padding), left-padded, embedded with the graph
tokens spliced in, and decoded greedily with the KV cache by ``generate``. Left padding with an
attention mask gives the same greedy tokens as batch size 1, up to floating-point ties
(documented in docs/benchmarks.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from llamo_plugin.backends.base import GenerationResult, PromptInputs, ShouldStop, length_buckets
from llamo_plugin.config import DecodeConfig
from llamo_plugin.errors import CancelledError

logger = logging.getLogger(__name__)


class HFBackend:
    """Batched greedy decoding with transformers on the model's device."""

    name = "hf"

    def __init__(
        self,
        model: Any,
        max_batch_size: int = 64,
        max_batch_tokens: int = 32768,
        preallocate_cache: bool = True,
        compact: bool = True,
    ) -> None:
        """``model``: a :class:`~llamo_plugin.model.llamo.LlamoModel` (its LM and tokenizer
        are used; its graph encoder is not). ``preallocate_cache``: write the KV cache into
        one buffer instead of growing it by concatenation (same tokens, faster); ``compact``:
        our greedy loop (:mod:`llamo_plugin.model.greedy`), which also drops finished rows
        from the batch; ``False`` uses transformers' ``generate``."""
        self.model = model
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.preallocate_cache = preallocate_cache
        self.compact = compact

    def generate(
        self,
        prompts: Sequence[PromptInputs],
        decode: DecodeConfig,
        *,
        should_stop: ShouldStop | None = None,
    ) -> list[GenerationResult]:
        import torch

        out: list[GenerationResult | None] = [None] * len(prompts)
        lengths = [len(p.prompt.input_ids) + decode.max_new_tokens for p in prompts]
        for batch in length_buckets(lengths, self.max_batch_size, self.max_batch_tokens):
            if should_stop is not None and should_stop():
                raise CancelledError("generation cancelled")
            tokens = torch.from_numpy(np.stack([prompts[i].graph_tokens for i in batch]))
            gens = self.model.generate_with_graph_tokens(
                [prompts[i].prompt for i in batch],
                tokens,
                decode,
                should_stop=should_stop,
                preallocate_cache=self.preallocate_cache,
                compact=self.compact,
            )
            if should_stop is not None and should_stop():
                raise CancelledError("generation cancelled")
            for i, g in zip(batch, gens, strict=True):
                out[i] = GenerationResult(g.text, tuple(g.token_ids), g.stop_reason)
        return [g for g in out if g is not None]
