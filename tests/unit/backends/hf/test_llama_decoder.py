"""The fast Llama decoder (llamo_plugin.backends.hf.llama_decoder) computes transformers'
function: same logits, same greedy tokens as ``generate``, with prefill groups, a shared
prompt prefix, rows leaving the batch, GQA, and either decode-step attention."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from llamo_plugin.backends.base import PromptInputs
from llamo_plugin.backends.hf.backend import shared_prefix_length
from llamo_plugin.backends.hf.llama_decoder import LlamaDecoder, fast_greedy_decode, supports
from llamo_plugin.config import DecodeConfig
from llamo_plugin.prompt.assemble import collate_prompts

SMILES = [
    "CCO",
    "c1ccccc1C(=O)O",
    "C",
    "CC(=O)Oc1ccccc1C(=O)O",
    "[Na+].[Cl-]",
    "CCN(CC)CC",
    "CCCCCCCCCCCCCCCC(=O)O",
    "OC(=O)CC(O)(CC(O)=O)C(O)=O",
    "c1ccc2ccccc2c1",
]


def _embeds(model: Any, smiles: list[str]) -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
    examples = [model.prepare(s, "Describe this molecule.") for s in smiles]
    batch = collate_prompts([e.prompt for e in examples], model.tokenizer.pad_token_id)
    with torch.inference_mode():
        embeds = model.inputs_embeds(batch, model.encode_graphs([e.graph for e in examples]))
    return embeds, batch.attention_mask, examples


def _hf_generate(model: Any, embeds: torch.Tensor, mask: torch.Tensor, decode: DecodeConfig,
                 eos: int) -> list[list[int]]:  # fmt: skip
    from transformers import GenerationConfig

    config = GenerationConfig(
        do_sample=False,
        max_new_tokens=decode.max_new_tokens,
        eos_token_id=eos,
        pad_token_id=model.tokenizer.pad_token_id,
        no_repeat_ngram_size=decode.no_repeat_ngram_size,
        repetition_penalty=decode.repetition_penalty,
    )
    with torch.inference_mode():
        out = model.lm.generate(inputs_embeds=embeds, attention_mask=mask,
                                generation_config=config)  # fmt: skip
    return [ids[: ids.index(eos) + 1] if eos in ids else ids for ids in out.tolist()]


def _gqa_model() -> Any:
    from llamo_plugin.config import LlamoConfig, ProjectorConfig
    from llamo_plugin.model.factory import TINY_LM_CONFIG, build_random_model, tiny_tokenizer

    lm = {**TINY_LM_CONFIG, "num_key_value_heads": 2, "attention_bias": True}
    config = LlamoConfig(name="tiny-gqa", projector=ProjectorConfig(output_size=64))
    return build_random_model(lm, tiny_tokenizer(), config, seed=3)


def test_supports_llama_only(tiny_model: Any) -> None:
    assert supports(tiny_model.lm)
    from llamo_plugin.model.factory import TINY_LM_CONFIG, build_random_model, tiny_tokenizer

    mistral = build_random_model(TINY_LM_CONFIG, tiny_tokenizer(), lm_class="MistralForCausalLM")
    assert not supports(mistral.lm)
    with pytest.raises(ValueError, match="not supported"):
        LlamaDecoder(mistral.lm)


@pytest.mark.parametrize("which", ["tiny", "gqa"])
def test_prefill_logits_equal_transformers(tiny_model: Any, which: str) -> None:
    model = tiny_model if which == "tiny" else _gqa_model()
    embeds, mask, _ = _embeds(model, SMILES[:5])
    decoder = LlamaDecoder(model.lm)
    decoder.allocate(5, embeds.shape[1], embeds.shape[1] + 4, embeds)
    with torch.inference_mode():
        got = decoder.prefill(0, embeds, mask)
        position_ids = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
        want = model.lm(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids)
    torch.testing.assert_close(got, want.logits[:, -1].float(), atol=1e-5, rtol=1e-5)
    assert torch.isfinite(decoder.keys[0][:, :, : embeds.shape[1]]).all()  # padding too


@pytest.mark.parametrize("attention", ["sdpa", "numba"])
@pytest.mark.parametrize("share_prefix", [False, True])
@pytest.mark.parametrize("which", ["tiny", "gqa"])
@pytest.mark.parametrize(
    "decode",
    [
        DecodeConfig(max_new_tokens=30),
        DecodeConfig(max_new_tokens=30, no_repeat_ngram_size=3, repetition_penalty=1.2),
    ],
)
def test_groups_and_compaction_give_generate_tokens(
    tiny_model: Any, which: str, decode: DecodeConfig, share_prefix: bool, attention: str
) -> None:
    """Prefill in groups of unequal prompt lengths (optionally after a shared prompt prefix
    computed once), with an 'EOS' that rows emit at different steps (so rows leave the batch
    mid-way): the tokens of transformers' ``generate`` on the whole left-padded batch, with
    either decode-step attention (torch SDPA or the compiled kernel)."""
    if attention == "numba":
        pytest.importorskip("numba")
    model = tiny_model if which == "tiny" else _gqa_model()
    embeds, mask, examples = _embeds(model, SMILES)
    free = _hf_generate(model, embeds, mask, decode, eos=-1)
    counts: dict[int, int] = {}
    for row in free:
        for t in set(row[:20]):
            counts[t] = counts.get(t, 0) + 1
    eos = max(counts, key=lambda t: (counts[t] < len(free), counts[t]))  # common, not in all
    want = _hf_generate(model, embeds, mask, decode, eos)
    assert len({len(r) for r in want}) > 1  # rows finish at different steps
    prefix, fixed = None, 0
    if share_prefix:
        fixed = shared_prefix_length([PromptInputs(e.prompt, None) for e in examples])
        assert fixed > 3  # the chat template and system message
        first = int((mask[0] == 0).sum())
        prefix = embeds[0, first : first + fixed]
    groups = []
    for part in (slice(0, 4), slice(4, 6), slice(6, 9)):  # groups trimmed to their own length
        rows = []
        for r in range(part.start, part.stop):  # each row's prompt after the prefix
            start = int((mask[r] == 0).sum()) + fixed
            rows.append(embeds[r, start:])
        width = max(x.shape[0] for x in rows)
        e = embeds.new_zeros(len(rows), width, embeds.shape[2])
        m = mask.new_zeros(len(rows), width)
        for i, x in enumerate(rows):
            e[i, width - x.shape[0] :] = x
            m[i, width - x.shape[0] :] = 1
        groups.append((e, m))
    assert len({g[0].shape[1] for g in groups}) > 1
    got, cancelled = fast_greedy_decode(
        model.lm, groups, decode, eos, prefix=prefix, attention=attention
    )
    assert not cancelled
    assert got == want
