"""The ``hf`` backend: a transformers causal LM on CPU or CUDA, batched.

Prompts are sorted by length and cut into decode batches (at most ``max_batch_size`` rows and
a KV cache of at most ``max_cache_bytes``). For Llama LMs (the embedded model and the
official LLaMo checkpoint; :func:`~llamo_plugin.backends.hf.llama_decoder.supports`) each
decode batch is prefilled in groups of ``prefill_batch_size`` prompts of similar length
(little padding), after the prompt start all rows share (computed once), then decoded as one
batch whose finished rows leave it (:mod:`~llamo_plugin.backends.hf.llama_decoder`, the loop
of :mod:`~llamo_plugin.backends.hf.greedy`). Other LMs run transformers' ``generate`` on
each decode batch (the reference path,
:meth:`~llamo_plugin.model.llamo.LlamoModel.generate_with_graph_tokens`), without the copy
bias. Left padding with an attention mask gives the same greedy tokens as batch size 1, up
to floating-point ties (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from llamo_plugin.backends.base import PromptInputs, ShouldStop, length_buckets
from llamo_plugin.config import DecodeConfig
from llamo_plugin.errors import CancelledError
from llamo_plugin.records import Generation

if TYPE_CHECKING:
    import torch

    from llamo_plugin.backends.hf.copy_bias import PromptCopy
    from llamo_plugin.prompt.assemble import EncodedPrompt

logger = logging.getLogger(__name__)


class HFBackend:
    """Batched greedy decoding with transformers on the model's device."""

    name = "hf"

    def __init__(
        self,
        model: Any,
        max_batch_size: int = 256,
        max_batch_tokens: int | None = None,
        prefill_batch_size: int = 64,
        max_cache_bytes: int = 2 << 30,
        share_prefix: bool = True,
        attention: str = "auto",
    ) -> None:
        """``model``: a :class:`~llamo_plugin.model.llamo.LlamoModel` (its LM and tokenizer
        are used; its graph encoder is not). ``max_batch_tokens``: cap on rows x (longest
        prompt + ``max_new_tokens``) per decode batch (None: what ``max_cache_bytes`` of KV
        cache holds). For Llama LMs: ``prefill_batch_size`` prompts are prefilled at a time;
        ``share_prefix``: compute the prompt start all rows share (chat template, system
        message) once per decode batch; ``attention``: the decode-step attention
        (``"auto"``, ``"sdpa"`` or ``"numba"``, see
        :class:`~llamo_plugin.backends.hf.llama_decoder.LlamaDecoder`)."""
        self.model = model
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens or max(
            1, max_cache_bytes // kv_bytes_per_position(model.lm)
        )
        self.prefill_batch_size = prefill_batch_size
        self.share_prefix = share_prefix
        self.attention = attention
        self._warned_copy = False  # warn once per backend, not once per decode batch

    def generate(
        self,
        prompts: Sequence[PromptInputs],
        decode: DecodeConfig,
        *,
        should_stop: ShouldStop | None = None,
    ) -> list[Generation]:
        from llamo_plugin.backends.hf import llama_decoder

        out: list[Generation | None] = [None] * len(prompts)
        lengths = [len(p.prompt.input_ids) + decode.max_new_tokens for p in prompts]
        fast = llama_decoder.supports(self.model.lm)
        if not fast and decode.copy_bias:
            decode = reference_decode(decode, warn=not self._warned_copy)
            self._warned_copy = True
        for batch in length_buckets(lengths, self.max_batch_size, self.max_batch_tokens):
            if should_stop is not None and should_stop():
                raise CancelledError("generation cancelled")
            part = [prompts[i] for i in batch]
            if fast:
                gens = self._decode_grouped(part, decode, should_stop)
            else:
                gens = self.model.generate_with_graph_tokens(
                    [p.prompt for p in part], _graph_tokens(part), decode, should_stop=should_stop
                )
            for i, g in zip(batch, gens, strict=True):
                out[i] = g
        return [g for g in out if g is not None]

    def _decode_grouped(
        self, prompts: Sequence[PromptInputs], decode: DecodeConfig, should_stop: Any
    ) -> list[Generation]:
        """One decode batch (sorted longest first), prefilled in groups of similar length."""
        import torch

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
                embeds = model.inputs_embeds(batch, _graph_tokens(part).to(model.device))
                groups.append((embeds, batch.attention_mask.to(model.device)))
        return _fast_decode(
            model,
            groups,
            [p.prompt.input_ids for p in prompts],
            decode,
            prefix=prefix,
            should_stop=should_stop,
            attention=self.attention,
        )


def generate_batch(
    model: Any,
    prompts: Sequence[EncodedPrompt],
    graph_tokens: torch.Tensor,
    decode: DecodeConfig,
    *,
    should_stop: ShouldStop | None = None,
) -> list[Generation]:
    """Greedy answers for one batch as given (left-padded together: no length buckets, no
    prefill groups, no shared prefix), e.g. the decoded evaluation during training: the fast
    Llama decoder, or transformers' ``generate`` (without the copy bias) for other LMs.
    ``graph_tokens [B, T, D]`` (on any device). Raises ``CancelledError`` once
    ``should_stop()`` turns true."""
    import torch

    from llamo_plugin.backends.hf import llama_decoder
    from llamo_plugin.prompt.assemble import collate_prompts

    if not prompts:
        return []
    if not llama_decoder.supports(model.lm):
        return model.generate_with_graph_tokens(
            prompts, graph_tokens, reference_decode(decode), should_stop=should_stop
        )
    batch = collate_prompts(prompts, model.tokenizer.pad_token_id, padding_side="left")
    with torch.inference_mode():
        embeds = model.inputs_embeds(batch, graph_tokens.to(model.device))
    mask = batch.attention_mask.to(model.device)
    return _fast_decode(
        model, [(embeds, mask)], [p.input_ids for p in prompts], decode, should_stop=should_stop
    )


def _fast_decode(
    model: Any,
    groups: list[tuple[torch.Tensor, torch.Tensor]],
    prompt_ids: Sequence[Sequence[int]],
    decode: DecodeConfig,
    *,
    prefix: torch.Tensor | None = None,
    should_stop: ShouldStop | None = None,
    attention: str = "auto",
) -> list[Generation]:
    """:func:`~llamo_plugin.backends.hf.llama_decoder.fast_greedy_decode` with the decode's
    answer format and copy bias; ``prompt_ids`` of every row, in group order."""
    from llamo_plugin.backends.hf.llama_decoder import fast_greedy_decode
    from llamo_plugin.model.answer_format import answer_format_for

    fmt = answer_format_for(model, decode.answer_format) if decode.answer_format else None
    ids, cancelled = fast_greedy_decode(
        model.lm,
        groups,
        decode,
        model.tokenizer.eos_token_id,
        prefix=prefix,
        should_stop=should_stop,
        attention=attention,
        answer_format=fmt,
        copy=prompt_copy(prompt_ids, decode),
    )
    if cancelled or (should_stop is not None and should_stop()):
        raise CancelledError("generation cancelled")
    return [model.decode_ids(row) for row in ids]


def reference_decode(decode: DecodeConfig, warn: bool = True) -> DecodeConfig:
    """``decode`` for transformers' ``generate``, which has no copy-bias rule (``warn``: say
    so when that drops a copy bias)."""
    if not decode.copy_bias:
        return decode
    if warn:
        logger.warning(
            "hf backend: copy_bias %.3g is not applied (it needs the fast Llama decoder; "
            "this LM runs transformers' generate)",
            decode.copy_bias,
        )
    return decode.replace(copy_bias=0.0)


def _graph_tokens(prompts: Sequence[PromptInputs]) -> torch.Tensor:
    """The prompts' graph tokens stacked: ``[B, T, D]`` float32 on the CPU."""
    import torch

    return torch.from_numpy(np.stack([p.graph_tokens for p in prompts]))


def prompt_copy(prompts: Sequence[Sequence[int]], decode: DecodeConfig) -> PromptCopy | None:
    """The copy-bias state of a batch (None when ``decode.copy_bias`` is 0)."""
    if not decode.copy_bias:
        return None
    from llamo_plugin.backends.hf.copy_bias import PromptCopy

    return PromptCopy(prompts, decode.copy_bias, decode.copy_min_match, decode.copy_free)


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
