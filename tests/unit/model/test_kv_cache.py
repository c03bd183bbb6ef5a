"""The preallocated KV cache gives exactly the tokens of transformers' growing cache."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from llamo_plugin.config import DecodeConfig
from llamo_plugin.model.kv_cache import PreallocatedLayer

SMILES = ["CCO", "CC(=O)Oc1ccccc1C(=O)O", "C", "c1ccccc1N", "[Na+].[Cl-]"]


@pytest.mark.parametrize(
    "decode",
    [DecodeConfig(max_new_tokens=20), DecodeConfig(max_new_tokens=20, no_repeat_ngram_size=2)],
)
def test_same_tokens_as_dynamic_cache(tiny_model: Any, decode: DecodeConfig) -> None:
    examples = [tiny_model.prepare(s, "Describe this molecule.") for s in SMILES]
    tokens = tiny_model.encode_graphs([e.graph for e in examples])
    prompts = [e.prompt for e in examples]
    grown = tiny_model.generate_with_graph_tokens(prompts, tokens, decode)
    pre = tiny_model.generate_with_graph_tokens(prompts, tokens, decode, preallocate_cache=True)
    assert [g.token_ids for g in pre] == [g.token_ids for g in grown]


def test_layer_writes_in_place_and_checks_capacity() -> None:
    layer = PreallocatedLayer(capacity=5)
    k = torch.randn(2, 3, 4, 8)
    keys, values = layer.update(k, k + 1)
    assert keys.shape == (2, 3, 4, 8) and layer.get_seq_length() == 4
    torch.testing.assert_close(values, k + 1)
    step = torch.randn(2, 3, 1, 8)
    keys, _ = layer.update(step, step)
    torch.testing.assert_close(keys[:, :, 4:], step)
    assert keys.data_ptr() == layer._keys.data_ptr()  # a view, no copy
    with pytest.raises(RuntimeError, match="capacity"):
        layer.update(step, step)
