"""The LM backend contract: ``generate(list of PromptInputs) -> list of Generation``.

A :class:`PromptInputs` is one encoded prompt (token ids with ``GRAPH_SLOT`` placeholders,
from :mod:`llamo_plugin.prompt.assemble`) plus its graph tokens ``[T, D]`` from a graph
encoder. Every backend builds the same input embeddings from them (token embeddings with the
graph tokens spliced into the slots) and decodes greedily with the given
:class:`~llamo_plugin.config.DecodeConfig`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from llamo_plugin.config import DecodeConfig
from llamo_plugin.prompt.assemble import EncodedPrompt
from llamo_plugin.records import Generation

ShouldStop = Callable[[], bool]


@dataclass(frozen=True)
class PromptInputs:
    """One prompt for an LM backend.

    Attributes:
        prompt: token ids with ``GRAPH_SLOT`` at the ``T`` graph positions.
        graph_tokens: ``[T, D]`` float32.
    """

    prompt: EncodedPrompt
    graph_tokens: np.ndarray


class LMBackend(Protocol):
    """What the pipeline needs from a language-model backend."""

    name: str

    def generate(
        self,
        prompts: Sequence[PromptInputs],
        decode: DecodeConfig,
        *,
        should_stop: ShouldStop | None = None,
    ) -> list[Generation]:
        """Greedy answers in input order; raises ``CancelledError`` when ``should_stop()``
        turns true (partial answers are never returned)."""
        ...


def length_buckets(
    lengths: Sequence[int], max_batch_size: int, max_batch_tokens: int
) -> list[list[int]]:
    """Indices sorted by length (longest first) and cut into batches whose padded size
    (``len(batch) * longest``) stays within ``max_batch_tokens``."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and (
            len(current) >= max_batch_size or (len(current) + 1) * longest > max_batch_tokens
        ):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
