"""The compiled decode-step attention (llamo_plugin.backends.hf.decode_attention) computes
what the decoder's SDPA path does: rotary on the step's query/key, the key/value written to
the cache, softmax attention over each row's own columns minus its left padding,
shared-prefix columns read from the prefix buffers, GQA."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from llamo_plugin.backends.hf import decode_attention
from llamo_plugin.backends.hf.llama_decoder import LlamaDecoder


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


def test_kernel_equals_sdpa_with_groups_padding_prefix_and_gqa() -> None:
    kernel = decode_attention.kernel()
    if kernel is None:
        pytest.skip("numba not installed")
    gen = torch.Generator().manual_seed(0)
    heads, kv_heads, dim, capacity, fixed = 4, 2, 16, 24, 3
    # cache rows 0-3: group A (columns from 2), rows 4-6: group B (columns from 5)
    starts, offsets = [0, 4], [2, 5]
    masks = [np.ones((4, 10), bool), np.ones((3, 7), bool)]  # visible columns per group
    masks[0][1, fixed : fixed + 4] = False  # left padding after the shared prefix
    masks[0][3, fixed : fixed + 1] = False
    masks[1][2, fixed : fixed + 2] = False
    col = 12  # this step's column; earlier columns filled
    keys = torch.randn(7, kv_heads, capacity, dim, generator=gen)
    values = torch.randn(7, kv_heads, capacity, dim, generator=gen)
    prefix_k = torch.randn(kv_heads, fixed, dim, generator=gen)
    prefix_v = torch.randn(kv_heads, fixed, dim, generator=gen)
    for first, offset, m in zip(starts, offsets, masks, strict=True):
        rows = slice(first, first + m.shape[0])
        keys[rows, :, offset : offset + fixed] = prefix_k
        values[rows, :, offset : offset + fixed] = prefix_v
    # running rows: all of group A except cache row 2 (finished), then group B
    running = [0, 1, 3, 4, 5, 6]
    meta_masks = [masks[0][[0, 1, 3]], masks[1]]
    meta = decode_attention.group_meta([0, 4], offsets, meta_masks)
    meta = (np.array(running, dtype=np.int64), *meta[1:])  # cache rows of the running rows
    b = len(running)
    q = torch.randn(b, heads, dim, generator=gen)
    k = torch.randn(b, kv_heads, dim, generator=gen)
    v = torch.randn(b, kv_heads, dim, generator=gen)
    angle = torch.randn(b, dim // 2, generator=gen)
    angle = torch.cat([angle, angle], dim=-1)
    cos, sin = angle.cos(), angle.sin()

    want_keys, want_values = keys.clone(), values.clone()
    k_rot = _rotate(k, cos[:, None], sin[:, None])
    want = []
    row_masks = [*meta_masks[0], *meta_masks[1]]
    for j, (row, group) in enumerate(zip(running, [0, 0, 0, 1, 1, 1], strict=True)):
        want_keys[row, :, col] = k_rot[j]
        want_values[row, :, col] = v[j]
        offset = offsets[group]
        generated = np.ones(col + 1 - offset - row_masks[j].shape[0], bool)
        visible = np.concatenate([row_masks[j], generated])
        q_rot = _rotate(q[j], cos[j], sin[j])[:, None]  # [H, 1, hd]
        kk = want_keys[row, :, offset : col + 1].repeat_interleave(heads // kv_heads, 0)
        vv = want_values[row, :, offset : col + 1].repeat_interleave(heads // kv_heads, 0)
        mask = torch.from_numpy(visible)[None, None]
        want.append(F.scaled_dot_product_attention(q_rot, kk, vv, attn_mask=mask)[:, 0])

    out = decode_attention.run(
        kernel,
        (q.numpy(), k.numpy(), v.numpy()),
        (cos.numpy(), sin.numpy()),
        (keys.numpy(), values.numpy()),
        (prefix_k.numpy(), prefix_v.numpy()),
        meta,
        col,
        dim**-0.5,
    )
    torch.testing.assert_close(torch.from_numpy(out), torch.stack(want), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(keys, want_keys, atol=1e-6, rtol=1e-6)
    assert torch.equal(values, want_values)


def test_group_meta_rows_and_padding_runs() -> None:
    masks = [np.array([[1, 1, 0, 0, 1], [1, 1, 1, 1, 1]], bool), np.array([[0, 1, 1]], bool)]
    rows, start, lo, hi = decode_attention.group_meta([3, 7], [10, 4], masks)
    assert rows.tolist() == [3, 4, 7]
    assert start.tolist() == [10, 10, 4]
    assert lo.tolist() == [12, 10, 4] and hi.tolist() == [14, 10, 5]
    assert rows.dtype == np.int64
    with pytest.raises(ValueError, match="contiguous"):
        decode_attention.group_meta([0], [0], [np.array([[0, 1, 0, 1]], bool)])


def test_decoder_choice_of_attention(tiny_model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="attention must be"):
        LlamaDecoder(tiny_model.lm, "flash")
    assert LlamaDecoder(tiny_model.lm, "sdpa").kernel is None
    threads = torch.get_num_threads()
    try:  # auto: the kernel on one or two torch threads, SDPA (parallel) on more
        torch.set_num_threads(1)
        one = LlamaDecoder(tiny_model.lm, "auto").kernel
        torch.set_num_threads(2)
        two = LlamaDecoder(tiny_model.lm, "auto").kernel
        torch.set_num_threads(3)
        assert LlamaDecoder(tiny_model.lm, "auto").kernel is None
    finally:
        torch.set_num_threads(threads)
    assert one is two
    assert (one is None) == (decode_attention.kernel() is None)
    # where numba is missing or cannot compile: auto falls back, an explicit request fails
    monkeypatch.setattr(decode_attention, "kernel", lambda: None)
    assert LlamaDecoder(tiny_model.lm, "auto").kernel is None
    with pytest.raises(RuntimeError, match="needs numba"):
        LlamaDecoder(tiny_model.lm, "numba")


def test_kernel_mode_drops_rows_without_copying_and_refuses_a_late_prefill(
    tiny_model: Any,
) -> None:
    if decode_attention.kernel() is None:
        pytest.skip("numba not installed")
    decoder = LlamaDecoder(tiny_model.lm, "numba")
    embeds = torch.randn(3, 5, tiny_model.lm.config.hidden_size)
    mask = torch.ones(3, 5, dtype=torch.long)
    decoder.allocate(3, 5, 9, embeds)
    with torch.inference_mode():
        decoder.prefill(0, embeds, mask)
        before = [k[:, :, :5].clone() for k in decoder.keys]  # the filled columns
        order = decoder.keep_rows(torch.tensor([True, False, True]))
        assert order.tolist() == [0, 2]
        assert decoder._kernel_meta()[0].tolist() == [0, 2]  # cache rows of the running rows
        assert all(torch.equal(a, b[:, :, :5]) for a, b in zip(before, decoder.keys, strict=True))
        with pytest.raises(RuntimeError, match="after rows were dropped"):
            decoder.prefill(0, embeds, mask)
