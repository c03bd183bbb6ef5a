"""Batched greedy decoding of Llama-architecture LMs without the transformers module stack.

The ``hf`` backend's fast path for ``LlamaForCausalLM`` (the official LLaMo LM, Llama-2-7B, and
our embedded model). It computes the same function as transformers' Llama forward, from the
same weight tensors (nothing is copied), op for op: RMSNorm in fp32 then cast, rotary
embeddings from the model's own ``rotary_emb`` module, ``scaled_dot_product_attention`` with
a boolean mask, SiLU-gated MLP, the residual adds in the same order, the LM head on the
final norm. What it leaves out is the per-call machinery (mask builders, cache classes,
module hooks, output dataclasses) that dominates a decoding step of a small model on CPU,
and it keeps the KV cache in one preallocated buffer per layer, from which finished rows
leave by having live rows moved into their slots (see :meth:`LlamaDecoder.keep_rows`).
On one or two CPU threads (the worker processes; one process on a 2-core machine) the
decode step's attention is instead the compiled kernel of
:mod:`llamo_plugin.backends.hf.decode_attention` (same function, fp32, sums in another order),
with which finished rows leave without any copy.

The logits rules and the argmax are :mod:`llamo_plugin.backends.hf.greedy`'s, in the same
order as ``generate``. Tokens equal transformers' on the test set and on the 256 benchmark
molecules (tested; ``llamo bench`` reports ``identical_to_reference``); differences, if any,
would be floating-point ties.

Unsupported configurations (another architecture, ``pretraining_tp > 1``, dynamic RoPE, an
activation other than SiLU) return False from :func:`supports`; the ``hf`` backend then
runs transformers' ``generate`` (the reference path,
:meth:`~llamo_plugin.model.llamo.LlamoModel.generate_with_graph_tokens`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F  # noqa: N812

from llamo_plugin.backends.hf import decode_attention
from llamo_plugin.backends.hf.greedy import greedy_loop
from llamo_plugin.config import DecodeConfig

if TYPE_CHECKING:
    from llamo_plugin.backends.hf.copy_bias import PromptCopy
    from llamo_plugin.model.answer_format import AnswerFormat


def supports(lm: Any) -> bool:
    """Whether ``lm`` is a Llama causal LM this decoder reproduces exactly."""
    cfg = getattr(lm, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) != "llama":
        return False
    if type(lm).__name__ != "LlamaForCausalLM":
        return False
    rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
    rope_type = rope.get("rope_type", rope.get("type", "default")) if rope else "default"
    return (
        getattr(cfg, "hidden_act", "silu") == "silu"
        and getattr(cfg, "pretraining_tp", 1) == 1
        and rope_type != "dynamic"
    )


@dataclass(frozen=True)
class _Layer:
    """One decoder layer's weights (views of the transformers module's parameters)."""

    norm_in: torch.Tensor
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    o: torch.Tensor
    q_bias: torch.Tensor | None
    k_bias: torch.Tensor | None
    v_bias: torch.Tensor | None
    o_bias: torch.Tensor | None
    norm_post: torch.Tensor
    gate: torch.Tensor
    up: torch.Tensor
    down: torch.Tensor
    gate_bias: torch.Tensor | None
    up_bias: torch.Tensor | None
    down_bias: torch.Tensor | None


@dataclass
class _Group:
    """Prompts prefilled together. Their cache rows are ``[start, start + count)`` (rows
    past ``count`` have finished); their columns start at ``offset`` (prompts right-aligned
    to the common length). ``mask [count, prompt_len]`` is the left-padding mask."""

    start: int
    count: int
    offset: int
    mask: torch.Tensor


class LlamaDecoder:
    """Prefill + one-token steps of a ``LlamaForCausalLM`` over a preallocated KV cache.

    The batch is made of *groups*: prompts of similar length prefilled together (left-padded
    to the group's longest). Every group's prompt block is right-aligned to the longest
    prompt of the batch, so all rows write their generated tokens to the same column; each
    group's attention reads only its own columns (no reads of another group's padding).

    Shapes (B rows, T positions, H heads, Hk KV heads, hd head dim, D hidden, V vocab):
        key/value buffers ``[B, Hk, capacity, hd]``; prefill embeddings ``[b, T, D]`` per
        group; step embeddings ``[B, 1, D]`` -> logits ``[rows, V]`` fp32.
    """

    def __init__(self, lm: Any, attention: str = "auto") -> None:
        """``attention``: the decode-step attention: ``"sdpa"`` (torch), ``"numba"`` (the
        compiled kernel of :mod:`~llamo_plugin.backends.hf.decode_attention`, fp32 on CPU; an
        error if Numba is missing) or ``"auto"``: the kernel for an fp32 model on CPU when
        torch runs on one or two threads (the worker processes of :mod:`~llamo_plugin.workers`
        run on one; an in-process run on a 2-core machine on two) and Numba is there, else
        SDPA. The kernel runs on the calling thread: in a 2-thread process it decoded the
        benchmark's 256 molecules in 7.5-8.5 s vs SDPA's 9.7-10.2 s (splitting its rows
        between threads gained nothing); on more threads SDPA runs in parallel and the
        kernel does not (not measured here: a 2-core machine).
        Prefill always uses SDPA."""
        if attention not in ("auto", "sdpa", "numba"):
            raise ValueError(f"attention must be 'auto', 'sdpa' or 'numba', not {attention!r}")
        if not supports(lm):
            raise ValueError(f"{type(lm).__name__} is not supported by the fast Llama decoder")
        cfg = lm.config
        self.eps = float(cfg.rms_norm_eps)
        self.heads = int(cfg.num_attention_heads)
        self.kv_heads = int(getattr(cfg, "num_key_value_heads", None) or self.heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads)
        self.scale = self.head_dim**-0.5
        model = lm.model
        self.rotary = model.rotary_emb
        self.final_norm = model.norm.weight
        self.head = lm.lm_head.weight
        self.head_bias = getattr(lm.lm_head, "bias", None)
        self.layers = []
        for block in model.layers:
            a, m = block.self_attn, block.mlp
            self.layers.append(
                _Layer(
                    block.input_layernorm.weight,
                    a.q_proj.weight, a.k_proj.weight, a.v_proj.weight, a.o_proj.weight,
                    a.q_proj.bias, a.k_proj.bias, a.v_proj.bias, a.o_proj.bias,
                    block.post_attention_layernorm.weight,
                    m.gate_proj.weight, m.up_proj.weight, m.down_proj.weight,
                    m.gate_proj.bias, m.up_proj.bias, m.down_proj.bias,
                )
            )  # fmt: skip
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.groups: list[_Group] = []
        self.prompt_length = 0  # common (right-aligned) prompt length
        self.length = 0  # filled columns
        self.prefix_keys: list[torch.Tensor] = []  # [1, Hk, P, hd] per layer
        self.prefix_values: list[torch.Tensor] = []
        self.prefix_length = 0
        cpu_fp32 = self.head.device.type == "cpu" and self.head.dtype == torch.float32
        if attention == "numba" and not cpu_fp32:
            raise ValueError("attention='numba' runs fp32 models on CPU only")
        self.kernel = None
        # auto: the kernel (serial) where torch runs on one or two threads (measured faster
        # than SDPA on both); SDPA on more, where it runs in parallel and the kernel not.
        if attention == "numba" or (attention == "auto" and cpu_fp32
                                    and torch.get_num_threads() <= 2):  # fmt: skip
            self.kernel = decode_attention.kernel()
        if attention == "numba" and self.kernel is None:
            raise RuntimeError("attention='numba' needs numba (pip install llamo-plugin[fast])")
        self._meta: tuple[Any, ...] | None = None  # kernel row metadata (_kernel_meta)
        self._prefixes: list[tuple[Any, Any]] = []
        self._dropped = False  # kernel mode: rows left the metadata, not the groups

    # ------------------------------------------------------------------ pieces
    def _rms_norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """transformers' LlamaRMSNorm: statistics in fp32, then back to the input dtype."""
        dtype = x.dtype
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * h.to(dtype)

    @staticmethod
    def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return (x * cos) + (rotated * sin)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        last = self._rms_norm(x[:, -1, :], self.final_norm)
        return F.linear(last, self.head, self.head_bias).float()

    def _layers(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        attend: Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """The decoder layers on ``x [b, T, D]``; ``attend(layer, q, k, v)`` stores k/v and
        returns the attention output ``[b, H, T, hd]``."""
        batch, new, _ = x.shape
        cos, sin = self.rotary(x, positions)  # [b, T, hd]
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        for i, w in enumerate(self.layers):
            h = self._rms_norm(x, w.norm_in)
            q = F.linear(h, w.q, w.q_bias).view(batch, new, self.heads, -1).transpose(1, 2)
            k = F.linear(h, w.k, w.k_bias).view(batch, new, self.kv_heads, -1).transpose(1, 2)
            v = F.linear(h, w.v, w.v_bias).view(batch, new, self.kv_heads, -1).transpose(1, 2)
            q, k = self._rotate(q, cos, sin), self._rotate(k, cos, sin)
            attn = attend(i, q, k, v).transpose(1, 2).reshape(batch, new, -1)
            x = self._after_attention(x, attn, w)
        return x

    def _after_attention(self, x: torch.Tensor, attn: torch.Tensor, w: _Layer) -> torch.Tensor:
        """The rest of a layer: output projection and residual, then the SiLU-gated MLP and
        residual. ``x, attn [b, T, D]`` -> ``[b, T, D]``."""
        x = x + F.linear(attn, w.o, w.o_bias)
        h = self._rms_norm(x, w.norm_post)
        gated = F.silu(F.linear(h, w.gate, w.gate_bias)) * F.linear(h, w.up, w.up_bias)
        return x + F.linear(gated, w.down, w.down_bias)

    def _sdpa(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor):
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, scale=self.scale, enable_gqa=self.kv_heads != self.heads
        )

    # ------------------------------------------------------------------ cache
    def allocate(self, batch: int, prompt_length: int, capacity: int, like: torch.Tensor) -> None:
        """Empty KV buffers for ``batch`` rows: ``prompt_length`` prompt columns (every group
        right-aligned to it) plus room for ``capacity - prompt_length`` generated tokens."""
        shape = (batch, self.kv_heads, capacity, self.head_dim)
        self.keys = [like.new_empty(shape) for _ in self.layers]
        self.values = [like.new_empty(shape) for _ in self.layers]
        self.groups = []
        self.prompt_length = self.length = prompt_length

    def keep_rows(self, alive: torch.Tensor) -> torch.Tensor:
        """Drop finished rows: ``alive [B]`` bool over the running rows (in group order).

        Within each group, live rows past the group's new size move into the slots of
        finished rows before it, so only those rows' filled columns are copied (dropping
        rows by re-packing the whole cache copied every live row each time). Returns the
        new order of the running rows as indices into the old order; the caller reorders
        its per-row state with it.

        With the compiled kernel nothing is copied: it reads each running row's cache row
        through :meth:`_kernel_meta`, from which the finished rows are just removed.
        """
        if self.kernel is not None:
            meta = self._kernel_meta()
            keep = alive.cpu().numpy()
            self._meta = tuple(a[keep] for a in meta)
            self._dropped = True
            return torch.nonzero(alive).flatten()
        n = self.length
        order, first = [], 0
        for g in self.groups:
            live = alive[first : first + g.count]
            keep = int(live.sum())
            local = torch.arange(g.count, device=alive.device)
            holes = local[:keep][~live[:keep]]  # finished rows inside the new size
            movers = local[keep:][live[keep:]]  # live rows past it
            if holes.numel():
                dst, src = g.start + holes, g.start + movers
                for buffers in (self.keys, self.values):
                    for buf in buffers:
                        buf[dst, :, :n] = buf[src, :, :n]
            moved = local.clone()
            moved[holes] = movers
            moved = moved[:keep]
            order.append(first + moved)
            g.mask = g.mask[moved]
            first += g.count
            g.count = keep
        self.groups = [g for g in self.groups if g.count]
        return torch.cat(order)

    # ------------------------------------------------------------------ forward
    def set_prefix(self, embeds: torch.Tensor) -> None:
        """Compute, once, the keys/values of a prompt prefix every row starts with
        (``embeds [P, D]``, positions ``0..P-1``); :meth:`prefill` then copies them into each
        row instead of recomputing them."""
        new = embeds.shape[0]
        positions = torch.arange(new, device=embeds.device)[None]
        causal = torch.ones(new, new, dtype=torch.bool, device=embeds.device).tril()[None, None]
        keys: list[torch.Tensor] = []
        values: list[torch.Tensor] = []

        def attend(i: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            keys.append(k)
            values.append(v)
            return self._sdpa(q, k, v, causal)

        self._layers(embeds[None], positions, attend)
        self.prefix_keys, self.prefix_values, self.prefix_length = keys, values, new

    def prefill(self, start: int, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Prefill one group: rows ``[start, start + b)``, left-padded ``embeds [b, T, D]``
        with ``mask [b, T]`` (False at padding): the prompts after the shared prefix of
        :meth:`set_prefix`, if one was set. Returns the last position's logits ``[b, V]``.

        The group's columns are ``[prompt_length - P - T, prompt_length)``: the prefix
        (``P`` columns, copied), then the left-padded rest. Padding between them is masked,
        so every row attends to exactly its prompt, in order.
        """
        rows, new = embeds.shape[0], embeds.shape[1]
        if self._dropped:
            raise RuntimeError("prefill after rows were dropped from the batch")
        fixed = self.prefix_length
        offset = self.prompt_length - fixed - new
        if offset < 0:
            raise ValueError(f"prompt of {fixed + new} positions > allocated {self.prompt_length}")
        mask = mask.bool()
        positions = fixed + (mask.long().cumsum(-1) - 1).masked_fill(~mask, 0)
        width = fixed + new
        causal = torch.ones(new, width, dtype=torch.bool, device=mask.device).tril(fixed)
        visible = torch.cat([mask.new_ones(rows, fixed), mask], dim=1)  # [b, P + T]
        eye = torch.zeros(new, width, dtype=torch.bool, device=mask.device)
        eye[:, fixed:] = torch.eye(new, dtype=torch.bool, device=mask.device)
        # a left-padding query may see itself, so that no attention row is empty (no NaN)
        attn_mask = ((causal[None] & visible[:, None, :]) | eye[None])[:, None]  # [b,1,T,P+T]
        sl = slice(start, start + rows)
        own = slice(offset + fixed, self.prompt_length)
        cols = slice(offset, self.prompt_length)
        for i in range(len(self.layers) if fixed else 0):
            self.keys[i][sl, :, offset : offset + fixed] = self.prefix_keys[i]
            self.values[i][sl, :, offset : offset + fixed] = self.prefix_values[i]

        def attend(i: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            self.keys[i][sl, :, own] = k
            self.values[i][sl, :, own] = v
            if not fixed:
                return self._sdpa(q, k, v, attn_mask)
            return self._sdpa(q, self.keys[i][sl, :, cols], self.values[i][sl, :, cols],
                              attn_mask)  # fmt: skip

        x = self._layers(embeds, positions, attend)
        self.groups.append(_Group(start, rows, offset, visible))
        self._meta = None
        return self._logits(x)

    def step(self, embeds: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """One new token per running row: ``embeds [B, 1, D]``, ``positions [B]`` (running
        rows in group order) -> logits ``[B, V]``. Each group attends to its own rows and
        columns only."""
        if self.kernel is not None:
            return self._kernel_step(embeds, positions)
        col, end = self.length, self.length + 1
        generated = end - self.prompt_length
        parts, first = [], 0
        for g in self.groups:
            ones = g.mask.new_ones(g.count, generated)
            mask = torch.cat([g.mask, ones], dim=1)[:, None, None, :]
            parts.append((slice(first, first + g.count), slice(g.start, g.start + g.count),
                          g.offset, mask))  # fmt: skip
            first += g.count

        def attend(i: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            keys, values = self.keys[i], self.values[i]
            outs = []
            for running, rows, offset, mask in parts:
                keys[rows, :, col] = k[running, :, 0]
                values[rows, :, col] = v[running, :, 0]
                outs.append(
                    self._sdpa(q[running], keys[rows, :, offset:end], values[rows, :, offset:end],
                               mask)
                )  # fmt: skip
            return outs[0] if len(outs) == 1 else torch.cat(outs)

        x = self._layers(embeds, positions[:, None], attend)
        self.length = end
        return self._logits(x)

    def _kernel_meta(self) -> tuple[Any, ...]:
        """``(rows, start, pad_lo, pad_hi)`` of the running rows for the kernel (see
        :func:`~llamo_plugin.backends.hf.decode_attention.group_meta`), built from the groups
        after prefill; also the prefix keys/values as contiguous arrays."""
        if self._meta is None:
            self._meta = decode_attention.group_meta(
                [g.start for g in self.groups],
                [g.offset for g in self.groups],
                [g.mask.cpu().numpy() for g in self.groups],
            )
            _, start, pad_lo, pad_hi = self._meta
            if ((pad_hi > pad_lo) & (pad_lo < start + self.prefix_length)).any():
                raise ValueError("left padding inside the shared prefix columns")
            empty = self.keys[0].new_empty(self.kv_heads, 0, self.head_dim).numpy()
            self._prefixes = [
                (k[0].contiguous().numpy(), v[0].contiguous().numpy())
                for k, v in zip(self.prefix_keys, self.prefix_values, strict=True)
            ] or [(empty, empty)] * len(self.layers)
        return self._meta

    def _kernel_step(self, embeds: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """:meth:`step` with the compiled decode-attention kernel: one call per layer for
        all groups, which also applies the rotary embedding to the step's queries and keys
        and writes keys/values into the cache. Same layer arithmetic as :meth:`_layers`."""
        col = self.length
        meta = self._kernel_meta()
        x = embeds
        batch = x.shape[0]
        cos, sin = self.rotary(x, positions[:, None])  # [b, 1, hd]
        rotary = (cos[:, 0].contiguous().numpy(), sin[:, 0].contiguous().numpy())
        for i, w in enumerate(self.layers):
            h = self._rms_norm(x, w.norm_in)
            q = F.linear(h, w.q, w.q_bias).view(batch, self.heads, -1)
            k = F.linear(h, w.k, w.k_bias).view(batch, self.kv_heads, -1)
            v = F.linear(h, w.v, w.v_bias).view(batch, self.kv_heads, -1)
            out = decode_attention.run(
                self.kernel,
                (q.numpy(), k.numpy(), v.numpy()),
                rotary,
                (self.keys[i].numpy(), self.values[i].numpy()),
                self._prefixes[i],
                meta,
                col,
                self.scale,
            )
            x = self._after_attention(x, torch.from_numpy(out).view(batch, 1, -1), w)
        self.length = col + 1
        return self._logits(x)


@torch.inference_mode()
def fast_greedy_decode(
    lm: Any,
    groups: list[tuple[torch.Tensor, torch.Tensor]],
    decode: DecodeConfig,
    eos_token_id: int,
    *,
    prefix: torch.Tensor | None = None,
    should_stop: Callable[[], bool] | None = None,
    attention: str = "auto",
    answer_format: AnswerFormat | None = None,
    copy: PromptCopy | None = None,
) -> tuple[list[list[int]], bool]:
    """Greedy decoding (:func:`~llamo_plugin.backends.hf.greedy.greedy_loop`) on
    :class:`LlamaDecoder`, for a batch made of prefill groups (``attention``: see
    :class:`LlamaDecoder`). Finished rows leave the batch as soon as they finish (only the
    rows that move into their slots are copied, or nothing with the kernel).

    Args:
        groups: ``(inputs_embeds [b, L, D], attention_mask [b, L])`` per group: left-padded
            prompt embeddings (graph tokens spliced in), 0 at padding. All groups decode as
            one batch; rows are numbered in group order.
        prefix: ``[P, D]`` embeddings of a prompt start shared by every row and left out of
            ``groups`` (computed once; positions ``0..P-1``).
        answer_format: an :class:`~llamo_plugin.model.answer_format.AnswerFormat` that keeps
            every answer inside its format (constrained decoding), or None.
        copy: a :class:`~llamo_plugin.backends.hf.copy_bias.PromptCopy` over the rows'
            prompts (copy-biased decoding), or None.

    Returns:
        (generated ids per row, up to and including EOS when reached; cancelled flag).
    """
    first = groups[0][0]
    device = first.device
    batch = sum(e.shape[0] for e, _ in groups)
    fixed = 0 if prefix is None else prefix.shape[0]
    prompt_length = fixed + max(e.shape[1] for e, _ in groups)
    decoder = LlamaDecoder(lm, attention)
    decoder.allocate(batch, prompt_length, prompt_length + decode.max_new_tokens, first)
    if prefix is not None and fixed:
        decoder.set_prefix(prefix)
    logits_parts, positions, start = [], [], 0
    for embeds, mask in groups:
        if should_stop is not None and should_stop():
            return [[] for _ in range(batch)], True
        logits_parts.append(decoder.prefill(start, embeds, mask))
        positions.append(fixed + mask.long().sum(-1))  # next position id of each row
        start += embeds.shape[0]
    embed = lm.get_input_embeddings()
    return greedy_loop(
        torch.cat(logits_parts),
        torch.cat(positions).to(device),
        decode,
        eos_token_id,
        step=lambda tokens, pos: decoder.step(embed(tokens)[:, None, :], pos),
        drop=lambda finished: decoder.keep_rows(~finished),
        should_stop=should_stop,
        answer_format=answer_format,
        copy=copy,
    )
