"""Constrained decoding: a random model's answers match the format on both decode paths
(the hf backend's fast decoder and transformers' ``generate``), and the paths agree."""

from __future__ import annotations

import re

import pytest
import torch

from llamo_plugin.backends.hf import generate_batch
from llamo_plugin.config import DecodeConfig
from llamo_plugin.errors import ConfigError
from llamo_plugin.model.answer_format import AnswerFormat
from llamo_plugin.model.factory import tiny_random_model
from llamo_plugin.tasks import PROPERTY_ANSWER_FORMAT
from llamo_plugin.train.build_pubchem_gap import ANSWER_FORMAT as EV_FORMAT

SMILES = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "OCC(O)CO", "C#N", "CCN"]


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    return tiny_random_model(seed=5)


def test_mask_follows_the_format(model) -> None:  # type: ignore[no-untyped-def]
    fmt = AnswerFormat(model.tokenizer, PROPERTY_ANSWER_FORMAT)
    tok = model.tokenizer
    eos = tok.eos_token_id
    start = fmt.allowed("")
    assert not start[eos]  # an empty answer is not a number
    allowed_texts = {fmt._texts[i] for i in torch.nonzero(start).flatten().tolist()}
    assert allowed_texts
    assert all(t.strip() == "" or t.strip()[0] in "-0" for t in allowed_texts)
    assert fmt.allowed("-0.2482")[eos]  # complete: EOS allowed ...
    assert int(fmt.allowed("-0.2482").sum()) == 1  # ... and nothing else
    assert not fmt.allowed("-0.24")[eos]
    # digits of the prefix do not matter (cache key), the shape does
    assert torch.equal(fmt.allowed("-0.91"), fmt.allowed("-0.24"))


@pytest.mark.parametrize("pattern", [PROPERTY_ANSWER_FORMAT, EV_FORMAT])
@pytest.mark.parametrize("path", ["fast", "generate"])
def test_every_decode_path_gives_well_formed_answers(model, pattern, path) -> None:  # type: ignore[no-untyped-def]
    decode = DecodeConfig(max_new_tokens=12, answer_format=pattern)
    prepared = [model.prepare(s, "Please provide the HOMO energy value for this molecule.")
                for s in SMILES]  # fmt: skip
    tokens = model.encode_graphs([p.graph for p in prepared])
    prompts = [p.prompt for p in prepared]
    if path == "fast":
        gens = generate_batch(model, prompts, tokens, decode)
    else:
        gens = model.generate_with_graph_tokens(prompts, tokens, decode)
    for g in gens:
        assert re.fullmatch(pattern, g.text), g.text
        assert g.stop_reason == "eos"
    # unconstrained, the random model does not write numbers (the test cannot pass trivially)
    free = model.generate_with_graph_tokens(prompts, tokens, DecodeConfig(max_new_tokens=12))
    assert not all(re.fullmatch(pattern, g.text) for g in free)


def test_fast_decoder_and_generate_agree(model) -> None:  # type: ignore[no-untyped-def]
    decode = DecodeConfig(max_new_tokens=12, answer_format=PROPERTY_ANSWER_FORMAT)
    prepared = [model.prepare(s, "What is the HOMO-LUMO gap?") for s in SMILES]
    tokens = model.encode_graphs([p.graph for p in prepared])
    prompts = [p.prompt for p in prepared]
    a = generate_batch(model, prompts, tokens, decode)
    b = model.generate_with_graph_tokens(prompts, tokens, decode)
    assert [g.text for g in a] == [g.text for g in b]


def test_decode_config_rejects_a_bad_regex() -> None:
    with pytest.raises(ConfigError, match="regex"):
        DecodeConfig(answer_format="(-?0\\.\\d{4}")


class _StubTokenizer:
    """A five-piece vocabulary: EOS and four candidate answers."""

    pieces = ("</s>", "\u2581-0.2", "\u2581-0.3", "\u2581-0.4", "\u2581x")
    eos_token_id = 0
    all_special_ids = (0,)

    def __len__(self) -> int:
        return len(self.pieces)

    def convert_ids_to_tokens(self, i: int) -> str:
        return self.pieces[i]


def test_number_midpoint() -> None:
    from llamo_plugin.model.answer_format import number_midpoint

    assert number_midpoint("-0.24") == pytest.approx(-0.245)
    assert number_midpoint(" 5") == pytest.approx(5.5)
    assert number_midpoint("-") is None and number_midpoint("x1") is None


def test_median_choice_differs_from_the_mode() -> None:
    fmt = AnswerFormat(_StubTokenizer(), r"-0\.\d")
    probs = torch.tensor([[0.0, 0.40, 0.35, 0.25, 0.0]])
    scores = probs.clamp(min=1e-9).log()
    empty = torch.empty(1, 0, dtype=torch.long)
    assert int(fmt.mask_scores(scores, empty).argmax()) == 1  # the mode: -0.2
    assert int(fmt.median_tokens(scores, empty)[0]) == 2  # the median: -0.3
    # a complete answer: only EOS remains, whatever the choice rule
    done = torch.tensor([[2]])
    assert int(fmt.median_tokens(scores, done)[0]) == 0


def test_median_decoding_is_well_formed_on_both_paths(model) -> None:  # type: ignore[no-untyped-def]
    decode = DecodeConfig(
        max_new_tokens=12, answer_format=PROPERTY_ANSWER_FORMAT, answer_choice="median"
    )
    prepared = [model.prepare(s, "What is the HOMO-LUMO gap?") for s in SMILES]
    tokens = model.encode_graphs([p.graph for p in prepared])
    prompts = [p.prompt for p in prepared]
    a = generate_batch(model, prompts, tokens, decode)
    b = model.generate_with_graph_tokens(prompts, tokens, decode)
    assert [g.text for g in a] == [g.text for g in b]
    assert all(re.fullmatch(PROPERTY_ANSWER_FORMAT, g.text) for g in a)


def test_property_tasks_decode_with_their_format() -> None:
    from llamo_plugin.tasks import PROPERTIES, PUBCHEM_GAP, QA_MAX_NEW_TOKENS, Property

    for spec in (*PROPERTIES.values(), PUBCHEM_GAP):
        decode = spec.decode_config()
        assert decode.answer_format == spec.answer_format != ""
        assert decode.answer_choice == spec.answer_choice
        assert decode.max_new_tokens == spec.max_new_tokens
    assert PROPERTIES[Property.HOMO].decode_config().max_new_tokens != QA_MAX_NEW_TOKENS
