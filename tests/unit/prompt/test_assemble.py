"""Prompt assembly: the reference §6 worked example id for id, padding and the splice."""

from __future__ import annotations

import pytest
import torch

from llamo_plugin.chem.smiles import parse_smiles, prompt_smiles
from llamo_plugin.config import PromptConfig
from llamo_plugin.errors import TokenCountMismatchError
from llamo_plugin.prompt.assemble import (
    GRAPH_SLOT,
    IGNORE_INDEX,
    EncodedPrompt,
    collate_prompts,
    encode_conversation,
    splice_graph_tokens,
)
from llamo_plugin.prompt.templates import Turn, molecule_user_text

# Reference §6: aspirin + "Could you give me a brief overview of this molecule?" (94 ids).
ASPIRIN_PROMPT_IDS = [
    1, 518, 25580, 29962, 3532, 14816, 29903, 6778, 13, 1576, 1494, 338, 263, 14983, 1546, 263,
    12758, 5199, 322, 319, 29902, 20255, 29889, 13, 29966, 829, 14816, 29903, 6778, 13, 13,
    4174, 29898, 29922, 29949, 29897, 29949, 29883, 29896, 617, 26854, 29896, 29907, 29898,
    29922, 29949, 29897, 29949,
    *[GRAPH_SLOT] * 28,
    6527, 366, 2367, 592, 263, 11473, 975, 1493, 310, 445, 13206, 29883, 1297, 29973, 518,
    29914, 25580, 29962,
]  # fmt: skip
# "The molecule is a member of benzoic acids.</s>"
ANSWER_IDS = [450, 13206, 29883, 1297, 338, 263, 4509, 310, 3856, 2502, 293, 1274, 4841, 29889, 2]
INSTRUCTION = "Could you give me a brief overview of this molecule?"


def _aspirin_text() -> str:
    # Input deliberately non-canonical: the prompt must use RDKit's canonical form.
    return prompt_smiles(parse_smiles("OC(=O)c1ccccc1OC(C)=O"))


def test_worked_example_prompt_ids(llama2_tokenizer) -> None:
    enc = encode_conversation(
        llama2_tokenizer, _aspirin_text(), INSTRUCTION, config=PromptConfig(), num_graph_tokens=28
    )
    assert len(enc.input_ids) == 94
    assert enc.num_graph_slots == 28
    assert enc.input_ids == ASPIRIN_PROMPT_IDS
    assert all(label == IGNORE_INDEX for label in enc.labels)


def test_worked_example_answer_ids(llama2_tokenizer) -> None:
    enc = encode_conversation(
        llama2_tokenizer,
        _aspirin_text(),
        INSTRUCTION,
        config=PromptConfig(),
        num_graph_tokens=28,
        answer="The molecule is a member of benzoic acids.",
    )
    assert enc.input_ids == ASPIRIN_PROMPT_IDS + ANSWER_IDS
    assert enc.labels == [IGNORE_INDEX] * 94 + ANSWER_IDS


def test_llama2_vocab_and_special_ids(llama2_tokenizer) -> None:
    assert len(llama2_tokenizer) == 32001
    assert (llama2_tokenizer.bos_token_id, llama2_tokenizer.eos_token_id) == (1, 2)
    assert llama2_tokenizer.pad_token_id == 32000


def test_saved_tokenizer_gives_same_ids(llama2_tokenizer, tmp_path) -> None:
    """What the converter writes into a model directory must tokenise identically."""
    from transformers import AutoTokenizer

    llama2_tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    enc = encode_conversation(
        reloaded, _aspirin_text(), INSTRUCTION, config=PromptConfig(), num_graph_tokens=28
    )
    assert enc.input_ids == ASPIRIN_PROMPT_IDS
    assert reloaded.pad_token_id == 32000


def test_multi_turn_labels_only_assistant(llama2_tokenizer) -> None:
    turns = [
        Turn("user", INSTRUCTION),
        Turn("assistant", "It is aspirin."),
        Turn("user", "Is it an acid?"),
    ]
    enc = encode_conversation(
        llama2_tokenizer, "CCO", turns, config=PromptConfig(), num_graph_tokens=28, answer="Yes."
    )
    labelled = [i for i, lab in zip(enc.input_ids, enc.labels, strict=True) if lab != IGNORE_INDEX]

    def encode(text: str) -> list[int]:
        return llama2_tokenizer.encode(text, add_special_tokens=False)

    assert labelled == encode("It is aspirin.</s>") + encode("Yes.</s>")
    assert labelled.count(2) == 2
    assert enc.num_graph_slots == 28
    # the later user turn starts with a literal BOS parsed as the special token
    second_user = enc.input_ids.index(2) + 1
    assert enc.input_ids[second_user] == 1


def test_instruction_with_placeholder_keeps_its_position() -> None:
    assert molecule_user_text("CCO", "Describe <graph> please") == "CCO Describe <graph> please"
    assert molecule_user_text("CCO", "Describe it") == "CCO<graph> Describe it"


@pytest.mark.parametrize(
    "bad", [[Turn("assistant", "x")], [], [Turn("user", "a"), Turn("user", "b")]]
)
def test_malformed_conversations_rejected(tiny_model, bad) -> None:
    with pytest.raises(ValueError):
        encode_conversation(
            tiny_model.tokenizer, "C", bad, config=PromptConfig(), num_graph_tokens=28
        )


def test_left_and_right_padding() -> None:
    a = EncodedPrompt([1, 5, GRAPH_SLOT, GRAPH_SLOT, 6], [IGNORE_INDEX] * 4 + [6])
    b = EncodedPrompt([1, GRAPH_SLOT, GRAPH_SLOT], [IGNORE_INDEX] * 3)
    left = collate_prompts([a, b], pad_id=0)
    assert left.input_ids.tolist() == [[1, 5, 0, 0, 6], [0, 0, 1, 0, 0]]
    assert left.attention_mask.tolist() == [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]]
    assert left.graph_mask.tolist() == [[0, 0, 1, 1, 0], [0, 0, 0, 1, 1]]
    right = collate_prompts([a, b], pad_id=0, padding_side="right", with_labels=True)
    assert right.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert right.labels.tolist()[0][-1] == 6
    assert right.labels.tolist()[1] == [IGNORE_INDEX] * 5


def test_splice_writes_tokens_in_order() -> None:
    prompts = [
        EncodedPrompt([1, GRAPH_SLOT, GRAPH_SLOT, 7], [IGNORE_INDEX] * 4),
        EncodedPrompt([GRAPH_SLOT, GRAPH_SLOT], [IGNORE_INDEX] * 2),
    ]
    batch = collate_prompts(prompts, pad_id=0)
    embeds = torch.zeros(2, 4, 3)
    graph = torch.arange(12, dtype=torch.float32).view(2, 2, 3) + 1
    out = splice_graph_tokens(embeds, batch.graph_mask, graph)
    assert torch.equal(out[0, 1:3], graph[0])
    assert torch.equal(out[1, 2:4], graph[1])
    assert out[0, 0].abs().sum() == 0 and out[1, :2].abs().sum() == 0


def test_splice_count_mismatch_raises() -> None:
    batch = collate_prompts([EncodedPrompt([1, GRAPH_SLOT, 2], [IGNORE_INDEX] * 3)], pad_id=0)
    with pytest.raises(TokenCountMismatchError, match="graph slots"):
        splice_graph_tokens(torch.zeros(1, 3, 4), batch.graph_mask, torch.zeros(1, 2, 4))
    with pytest.raises(TokenCountMismatchError):
        splice_graph_tokens(torch.zeros(1, 3, 4), batch.graph_mask, torch.zeros(1, 1, 5))
