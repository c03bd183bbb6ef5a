"""A preallocated key/value cache for greedy decoding with transformers.

transformers' ``DynamicLayer`` grows the cache with ``torch.cat`` at every step, copying the
whole cache (``[B, heads, length, head_dim]`` per layer) each time: on CPU, for a batch of 64
descriptions, that copying took most of the decoding time (measured in docs/benchmarks.md).
:class:`PreallocatedLayer` writes each step into a buffer sized for prompt + answer and returns
views of the filled part. Attention sees exactly the same keys and values, so the tokens are
identical (tested).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer


class PreallocatedLayer(DynamicLayer):
    """A ``DynamicLayer`` whose storage is allocated once, for ``capacity`` positions."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.length = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        batch, heads, _, k_dim = key_states.shape
        shape_v = (batch, heads, self.capacity, value_states.shape[-1])
        self._keys = key_states.new_empty(batch, heads, self.capacity, k_dim)
        self._values = value_states.new_empty(shape_v)
        self.keys, self.values = self._keys[:, :, :0], self._values[:, :, :0]
        self.length = 0
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start, n = self.length, key_states.shape[-2]
        if start + n > self.capacity:
            raise RuntimeError(f"KV cache capacity {self.capacity} exceeded")
        self._keys[:, :, start : start + n] = key_states
        self._values[:, :, start : start + n] = value_states
        self.length = start + n
        self.keys = self._keys[:, :, : self.length]
        self.values = self._values[:, :, : self.length]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length if self.is_initialized else 0

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep only the rows ``indices`` (finished rows leave the batch)."""
        if not self.is_initialized:
            return
        self._keys = self._keys.index_select(0, indices)
        self._values = self._values.index_select(0, indices)
        self.keys = self._keys[:, :, : self.length]
        self.values = self._values[:, :, : self.length]

    def reset(self) -> None:
        self.length = 0
        super().reset()


def preallocated_cache(lm: Any, capacity: int) -> DynamicCache:
    """A cache for ``lm`` (a decoder-only transformers model) holding ``capacity`` positions."""
    cache = DynamicCache(config=lm.config)
    cache.layers = [PreallocatedLayer(capacity) for _ in range(lm.config.num_hidden_layers)]
    return cache
