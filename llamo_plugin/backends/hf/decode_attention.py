"""One-token (decode-step) attention over the preallocated KV cache, as a compiled CPU kernel.

A decoding step of a small LM on CPU reads the whole KV cache once per layer; that read is
the attention's cost. PyTorch's ``scaled_dot_product_attention`` on CPU runs that case (one
query per row) at 3.5-5 GB/s on the 2-core VM (its kernel is built for blocks of queries), a
Numba loop over each row's own columns at 8-10 GB/s. This module holds that loop, which also
applies the rotary embedding to the step's query and key, writes key and value into the
cache and serves every prefill group of the batch in one call (no per-group slicing, masks
or concatenation).

It computes the same function as SDPA with the decoder's boolean mask: for each running row
``r`` and head ``h``, softmax(q·k / sqrt(hd)) over the row's columns ``[start, end)`` minus
its left padding ``[pad_lo, pad_hi)``, applied to the values; fp32 throughout, with sums in
another order than SDPA's (differences ~1e-7, tested against SDPA). Grouped-query attention
maps query head ``h`` to KV head ``h // (H // Hk)``.

Numba is an optional dependency (``pip install llamo-plugin[fast]``; in the CPU requirements
and the KNIME environment). Without it, or when it cannot compile here, :func:`kernel`
returns None and the decoder uses SDPA. Compiled code is cached on disk by Numba
(``cache=True``), so only a first run on a machine compiles (~4 s on the 2-core VM).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

Kernel = Callable[..., None]


def _attend_rows(
    q, k, v, cos, sin, keys, values, prefix_k, prefix_v, rows, start, pad_lo, pad_hi, col,
    scale, out,
):  # fmt: skip
    """One layer's decode step for every running row (compiled by :func:`kernel`).

    Args:
        q: ``[b, H, hd]`` the running rows' queries, before the rotary embedding.
        k, v: ``[b, Hk, hd]`` the step's keys (before rotary) and values; rotated keys and
            the values are written to column ``col`` of the cache.
        cos, sin: ``[b, hd]`` rotary tables at each row's position.
        keys, values: ``[B, Hk, capacity, hd]`` the layer's cache buffers.
        prefix_k, prefix_v: ``[Hk, P, hd]`` keys/values of the prompt prefix every row
            shares (its columns ``[start, start + P)`` hold copies; read from here, where
            they stay in the CPU cache); ``P = 0`` for none.
        rows: ``[b]`` cache row of each running row; ``start [b]`` its first column;
            ``pad_lo, pad_hi [b]``: its masked columns (left padding; none if equal).
        col: this step's column; every row attends to ``[start, col]``.
        out: ``[b, H, hd]`` attention output.

    One pass over each row's keys and values with a running maximum (online softmax: the
    accumulated weights are rescaled when the maximum grows), in three segments: the shared
    prefix, the row's columns before its padding, those after it. The rotary embedding is
    transformers' ``x * cos + rotate_half(x) * sin`` (the compiler may fuse a multiply-add
    there: differences of an ulp). Padding must not overlap the prefix columns.
    """
    heads = q.shape[1]
    kv_heads = k.shape[1]
    dim = q.shape[2]
    fixed = prefix_k.shape[1]
    per_kv = heads // kv_heads
    end = col + 1
    for r in range(q.shape[0]):
        c = rows[r]
        first = start[r]
        n = end - first
        acc = np.empty(dim, np.float32)
        qr = np.empty(dim, np.float32)
        kr = np.empty(dim, np.float32)
        half = dim // 2
        for g in range(kv_heads):
            for d in range(half):
                kr[d] = k[r, g, d] * cos[r, d] + (-k[r, g, d + half]) * sin[r, d]
            for d in range(half, dim):
                kr[d] = k[r, g, d] * cos[r, d] + k[r, g, d - half] * sin[r, d]
            for d in range(dim):
                keys[c, g, col, d] = kr[d]
                values[c, g, col, d] = v[r, g, d]
        for h in range(heads):
            g = h // per_kv
            for d in range(half):
                qr[d] = q[r, h, d] * cos[r, d] + (-q[r, h, d + half]) * sin[r, d]
            for d in range(half, dim):
                qr[d] = q[r, h, d] * cos[r, d] + q[r, h, d - half] * sin[r, d]
            m = np.float32(-np.inf)
            total = np.float32(0.0)
            for d in range(dim):
                acc[d] = 0.0
            for seg in range(3):
                if seg == 0:  # the shared prefix, from its own buffer
                    kk, vv, base, t0, t1 = prefix_k[g], prefix_v[g], 0, 0, fixed
                elif seg == 1:  # the row's columns before its padding
                    t1 = max(pad_lo[r] - first, fixed)
                    kk, vv, base, t0 = keys[c, g], values[c, g], first, fixed
                else:  # after it
                    t0 = max(pad_hi[r] - first, fixed)
                    kk, vv, base, t1 = keys[c, g], values[c, g], first, n
                for t in range(t0, t1):
                    s = np.float32(0.0)
                    for d in range(dim):
                        s += qr[d] * kk[base + t, d]
                    s *= scale
                    if s > m:
                        shrink = np.float32(math.exp(m - s))
                        total *= shrink
                        for d in range(dim):
                            acc[d] *= shrink
                        m = s
                    p = np.float32(math.exp(s - m))
                    total += p
                    for d in range(dim):
                        acc[d] += p * vv[base + t, d]
            inv = np.float32(1.0) / total
            for d in range(dim):
                out[r, h, d] = acc[d] * inv


@cache
def kernel() -> Kernel | None:
    """The compiled :func:`_attend_rows`, or None without Numba (or if it fails to compile
    here; logged once). Compiled for fp32 on first use and cached on disk (in memory only
    where Numba finds no writable cache location)."""
    try:
        import numba
    except ImportError:
        logger.info("numba not installed: decode attention uses torch SDPA")
        return None
    flags = {"fastmath": {"reassoc", "contract", "nsz"}, "boundscheck": False, "nogil": True}
    try:
        compiled = numba.njit(cache=True, **flags)(_attend_rows)
        _smoke(compiled)
        return compiled
    except Exception as exc:  # e.g. no writable cache location: compile in memory instead
        logger.info("numba could not cache the decode-attention kernel (%s)", exc)
    try:
        compiled = numba.njit(cache=False, **flags)(_attend_rows)
        _smoke(compiled)
        return compiled
    except Exception as exc:  # a broken toolchain must not break decoding
        logger.warning("numba decode-attention kernel unavailable (%s); using torch SDPA", exc)
        return None


def _smoke(compiled: Kernel) -> None:
    """Compile for the decoder's argument types with a tiny call."""
    f32, i64 = np.float32, np.int64
    q = np.zeros((1, 1, 2), f32)
    table = np.ones((1, 2), f32)
    cache_kv = np.zeros((1, 1, 2, 2), f32)
    prefix = np.zeros((1, 0, 2), f32)
    idx = np.zeros(1, i64)
    out = q.copy()
    compiled(q, q, q, table, table, cache_kv, cache_kv.copy(), prefix, prefix, idx, idx, idx, idx,
             1, f32(1.0), out)  # fmt: skip


def run(
    compiled: Kernel,
    qkv: tuple[np.ndarray, np.ndarray, np.ndarray],
    rotary: tuple[np.ndarray, np.ndarray],
    cache_kv: tuple[np.ndarray, np.ndarray],
    prefix: tuple[np.ndarray, np.ndarray],
    meta: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    col: int,
    scale: float,
) -> np.ndarray:
    """One layer's decode-step attention (arguments as in :func:`_attend_rows`: ``qkv``,
    ``rotary = (cos, sin)``, ``cache_kv = (keys, values)``, ``prefix = (prefix_k,
    prefix_v)``, ``meta = (rows, start, pad_lo, pad_hi)``), on the calling thread.
    Returns ``out [b, H, hd]``."""
    out = np.empty_like(qkv[0])
    compiled(*qkv, *rotary, *cache_kv, *prefix, *meta, col, np.float32(scale), out)
    return out


def group_meta(
    starts: list[int], offsets: list[int], masks: list[Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, start, pad_lo, pad_hi)`` int64 arrays for groups of running rows: group ``i``
    has cache rows ``starts[i] + j`` for ``j < len(masks[i])``, columns from ``offsets[i]``,
    and ``masks[i] [count, width]`` (bool, False at padding: one contiguous run per row, as
    left padding after a shared prefix gives)."""
    rows, start, lo, hi = [], [], [], []
    for first, offset, mask in zip(starts, offsets, masks, strict=True):
        m = np.asarray(mask, dtype=bool)
        count, width = m.shape
        padded = (~m).sum(axis=1)
        first_pad = np.where(padded > 0, (~m).argmax(axis=1), 0)
        cols = np.arange(width)[None, :]
        run = (cols >= first_pad[:, None]) & (cols < (first_pad + padded)[:, None])
        if not np.array_equal(run, ~m):
            raise ValueError("decode attention needs one contiguous masked run per row")
        rows.append(first + np.arange(count))
        start.append(np.full(count, offset))
        lo.append(offset + first_pad)
        hi.append(offset + first_pad + padded)
    return tuple(np.concatenate(a).astype(np.int64) for a in (rows, start, lo, hi))  # type: ignore[return-value]
