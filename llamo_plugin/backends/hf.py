"""The ``hf`` backend: a transformers causal LM on CPU or CUDA, batched.

Prompts are sorted by length and cut into decode batches (at most ``max_batch_size`` rows and
a KV cache of at most ``max_cache_bytes``). For Llama LMs
(:mod:`~llamo_plugin.model.llama_decoder`) each decode batch is prefilled in groups of
``prefill_batch_size`` prompts of similar length (little padding), then decoded as one batch
whose finished rows leave it; other LMs run transformers' forward in the same greedy loop
(:mod:`~llamo_plugin.model.greedy`) or ``generate``. Left padding with an attention mask gives
the same greedy tokens as batch size 1, up to floating-point ties (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from llamo_plugin.backends.base import PromptInputs, ShouldStop, length_buckets
from llamo_plugin.config import DecodeConfig
from llamo_plugin.errors import CancelledError
from llamo_plugin.records import Generation

logger = logging.getLogger(__name__)


class HFBackend:
    """Batched greedy decoding with transformers on the model's device."""

    name = "hf"

    def __init__(
        self,
        model: Any,
        max_batch_size: int = 256,
        max_batch_tokens: int | None = None,
        preallocate_cache: bool = True,
        compact: bool = True,
        fast_llama: bool = True,
        prefill_batch_size: int = 64,
        max_cache_bytes: int = 2 << 30,
        share_prefix: bool = True,
        attention: str = "auto",
    ) -> None:
        """``model``: a :class:`~llamo_plugin.model.llamo.LlamoModel` (its LM and tokenizer
        are used; its graph encoder is not). ``max_batch_tokens``: cap on rows x (longest
        prompt + ``max_new_tokens``) per decode batch (None: what ``max_cache_bytes`` of KV
        cache holds). ``preallocate_cache``: write the KV cache into one buffer instead of
        growing it by concatenation (same tokens, faster); ``compact``: our greedy loop
        (:mod:`llamo_plugin.model.greedy`), which also drops finished rows from the batch;
        ``False`` uses transformers' ``generate``. ``fast_llama``: run that loop on
        :mod:`~llamo_plugin.model.llama_decoder` (Llama LMs; same function, without the
        transformers module stack), prefilling ``prefill_batch_size`` prompts at a time;
        ``share_prefix``: compute the prompt start all rows share (chat template, system
        message) once per decode batch; ``attention``: the fast loop's decode-step attention
        (``"auto"``, ``"sdpa"`` or ``"numba"``, see
        :class:`~llamo_plugin.model.llama_decoder.LlamaDecoder`)."""
        self.model = model
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens or max(
            1, max_cache_bytes // kv_bytes_per_position(model.lm)
        )
        self.preallocate_cache = preallocate_cache
        self.compact = compact
        self.fast_llama = fast_llama
        self.prefill_batch_size = prefill_batch_size
        self.share_prefix = share_prefix
        self.attention = attention

    def generate(
        self,
        prompts: Sequence[PromptInputs],
        decode: DecodeConfig,
        *,
        should_stop: ShouldStop | None = None,
    ) -> list[Generation]:
        from llamo_plugin.model import llama_decoder

        out: list[Generation | None] = [None] * len(prompts)
        lengths = [len(p.prompt.input_ids) + decode.max_new_tokens for p in prompts]
        grouped = self.compact and self.fast_llama and llama_decoder.supports(self.model.lm)
        for batch in length_buckets(lengths, self.max_batch_size, self.max_batch_tokens):
            if should_stop is not None and should_stop():
                raise CancelledError("generation cancelled")
            if grouped:
                gens = self._decode_grouped([prompts[i] for i in batch], decode, should_stop)
            else:
                gens = self._decode_batch([prompts[i] for i in batch], decode, should_stop)
            for i, g in zip(batch, gens, strict=True):
                out[i] = g
        return [g for g in out if g is not None]

    def _decode_batch(
        self, prompts: Sequence[PromptInputs], decode: DecodeConfig, should_stop: Any
    ) -> list[Generation]:
        import torch

        tokens = torch.from_numpy(np.stack([p.graph_tokens for p in prompts]))
        gens = self.model.generate_with_graph_tokens(
            [p.prompt for p in prompts],
            tokens,
            decode,
            should_stop=should_stop,
            preallocate_cache=self.preallocate_cache,
            compact=self.compact,
            fast_llama=self.fast_llama,
        )
        if should_stop is not None and should_stop():
            raise CancelledError("generation cancelled")
        return gens

    def _decode_grouped(
        self, prompts: Sequence[PromptInputs], decode: DecodeConfig, should_stop: Any
    ) -> list[Generation]:
        """One decode batch (sorted longest first), prefilled in groups of similar length."""
        import torch

        from llamo_plugin.model.answer_format import answer_format_for
        from llamo_plugin.model.llama_decoder import fast_greedy_decode
        from llamo_plugin.prompt.assemble import EncodedPrompt, collate_prompts

        model = self.model
        fixed = shared_prefix_length(prompts) if self.share_prefix else 0
        groups = []
        prefix = None
        with torch.inference_mode():
            if fixed:
                ids = torch.tensor(prompts[0].prompt.input_ids[:fixed], device=model.device)
                prefix = model.lm.get_input_embeddings()(ids)  # [P, D]
            for part in prefill_groups(prompts, self.prefill_batch_size):
                rest = [EncodedPrompt(p.prompt.input_ids[fixed:], p.prompt.labels[fixed:])
                        for p in part]  # fmt: skip
                batch = collate_prompts(rest, model.tokenizer.pad_token_id, padding_side="left")
                tokens = torch.from_numpy(np.stack([p.graph_tokens for p in part]))
                embeds = model.inputs_embeds(batch, tokens.to(model.device))
                groups.append((embeds, batch.attention_mask.to(model.device)))
        ids, cancelled = fast_greedy_decode(
            model.lm,
            groups,
            decode,
            model.tokenizer.eos_token_id,
            prefix=prefix,
            should_stop=should_stop,
            attention=self.attention,
            answer_format=answer_format_for(model, decode.answer_format)
            if decode.answer_format
            else None,
            copy=prompt_copy([p.prompt.input_ids for p in prompts], decode),
        )
        if cancelled or (should_stop is not None and should_stop()):
            raise CancelledError("generation cancelled")
        return [model.decode_ids(row) for row in ids]


def prompt_copy(prompts: Sequence[Sequence[int]], decode: DecodeConfig) -> Any:
    """The copy-bias state of a batch (None when ``decode.copy_bias`` is 0)."""
    if not decode.copy_bias:
        return None
    from llamo_plugin.model.copy_bias import PromptCopy

    return PromptCopy(prompts, decode.copy_bias, decode.copy_min_match)


def shared_prefix_length(prompts: Sequence[PromptInputs]) -> int:
    """Length of the token prefix every prompt starts with (the chat template and system
    message), stopping before any graph slot and leaving each prompt at least one token."""
    from llamo_plugin.prompt.assemble import GRAPH_SLOT

    ids = [p.prompt.input_ids for p in prompts]
    limit = min(len(i) for i in ids) - 1
    n = 0
    while n < limit and ids[0][n] != GRAPH_SLOT and all(i[n] == ids[0][n] for i in ids):
        n += 1
    return n


def prefill_groups(
    prompts: Sequence[PromptInputs], max_rows: int, slack: float = 0.1
) -> list[list[PromptInputs]]:
    """Cut prompts sorted longest first into prefill groups of at most ``max_rows``; a new
    group starts where a prompt is shorter than the group's longest by more than
    ``slack`` of it (at least 4 positions), so little prefill compute goes to padding."""
    groups: list[list[PromptInputs]] = []
    longest = 0
    for p in prompts:
        n = len(p.prompt.input_ids)
        if not groups or len(groups[-1]) >= max_rows or longest - n > max(4, slack * longest):
            groups.append([])
            longest = n
        groups[-1].append(p)
    return groups


def kv_bytes_per_position(lm: Any) -> int:
    """Bytes of key/value cache one position of one row takes in ``lm`` (all layers)."""
    cfg = lm.config
    heads = int(cfg.num_attention_heads)
    kv_heads = int(getattr(cfg, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // heads)
    itemsize = next(lm.parameters()).element_size()
    return 2 * int(cfg.num_hidden_layers) * kv_heads * head_dim * itemsize
