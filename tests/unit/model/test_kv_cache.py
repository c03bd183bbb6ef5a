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


def test_ngram_ban_and_penalty_match_transformers() -> None:
    from transformers.generation.logits_process import (
        NoRepeatNGramLogitsProcessor,
        RepetitionPenaltyLogitsProcessor,
    )

    from llamo_plugin.model.greedy import apply_repetition_penalty, ban_repeated_ngrams

    gen = torch.Generator().manual_seed(0)
    for steps in range(0, 12):
        ids = torch.randint(0, 6, (3, steps), generator=gen)
        scores = torch.randn(3, 8, generator=gen)
        for n in (1, 2, 3, 4):
            want = NoRepeatNGramLogitsProcessor(n)(ids, scores.clone())
            torch.testing.assert_close(ban_repeated_ngrams(scores, ids, n), want)
        want = RepetitionPenaltyLogitsProcessor(1.3)(ids, scores.clone())
        torch.testing.assert_close(apply_repetition_penalty(scores, ids, 1.3), want)


def test_compacting_loop_equals_generate(tiny_model: Any) -> None:
    smiles = [*SMILES, "CCCCCCCC", "OC(=O)CC(O)(CC(O)=O)C(O)=O", "c1ccc2ccccc2c1"]
    examples = [tiny_model.prepare(s, "Describe this molecule.") for s in smiles]
    tokens = tiny_model.encode_graphs([e.graph for e in examples])
    prompts = [e.prompt for e in examples]
    for decode in (
        DecodeConfig(max_new_tokens=30),
        DecodeConfig(max_new_tokens=30, no_repeat_ngram_size=3, repetition_penalty=1.2),
    ):
        want = tiny_model.generate_with_graph_tokens(prompts, tokens, decode)
        got = tiny_model.generate_with_graph_tokens(prompts, tokens, decode, compact=True)
        assert [g.token_ids for g in got] == [g.token_ids for g in want]
        assert [g.stop_reason for g in got] == [g.stop_reason for g in want]


def test_compaction_when_rows_finish_at_different_steps(tiny_model: Any) -> None:
    """Pick as 'EOS' a token that rows emit at different steps, so rows really leave the batch
    mid-way, and compare with transformers' generate using the same EOS."""
    from transformers import GenerationConfig

    from llamo_plugin.model.greedy import greedy_decode
    from llamo_plugin.prompt.assemble import collate_prompts

    smiles = [*SMILES, "CCCCCCCC", "OC(=O)CC(O)(CC(O)=O)C(O)=O", "c1ccc2ccccc2c1"]
    examples = [tiny_model.prepare(s, "Describe this molecule.") for s in smiles]
    batch = collate_prompts([e.prompt for e in examples], tiny_model.tokenizer.pad_token_id)
    embeds = tiny_model.inputs_embeds(batch, tiny_model.encode_graphs([e.graph for e in examples]))
    decode = DecodeConfig(max_new_tokens=25)
    free, _ = greedy_decode(tiny_model.lm, embeds, batch.attention_mask, decode, eos_token_id=-1)
    counts: dict[int, int] = {}
    for row in free:
        for t in set(row[:15]):
            counts[t] = counts.get(t, 0) + 1
    eos = max(counts, key=lambda t: (counts[t] < len(free), counts[t]))  # common, not in all rows
    got, _ = greedy_decode(
        tiny_model.lm, embeds, batch.attention_mask, decode, eos, compact_fraction=0.01
    )
    lengths = {len(r) for r in got}
    assert len(lengths) > 1  # rows finished at different steps
    config = GenerationConfig(
        do_sample=False,
        max_new_tokens=25,
        eos_token_id=eos,
        pad_token_id=tiny_model.tokenizer.pad_token_id,
    )
    with torch.inference_mode():
        out = tiny_model.lm.generate(
            inputs_embeds=embeds, attention_mask=batch.attention_mask, generation_config=config
        )
    for row, ids in zip(got, out.tolist(), strict=True):
        want = ids[: ids.index(eos) + 1] if eos in ids else ids
        assert row == want
