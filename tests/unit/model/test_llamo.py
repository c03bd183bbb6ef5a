"""LlamoModel: batched greedy decoding equals batch-1, per-row errors, training loss."""

from __future__ import annotations

import pytest
import torch

from llamo_plugin.config import DecodeConfig, LlamoConfig
from llamo_plugin.errors import ConfigError
from llamo_plugin.model.llamo import LlamoModel

MOLECULES = ["CC(=O)Oc1ccccc1C(=O)O", "CCO", "C", "[Na+].[Cl-]", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C"]
INSTRUCTION = "Could you give me a brief overview of this molecule?"
DECODE = DecodeConfig(max_new_tokens=10)


def test_batched_generation_equals_batch_of_one(tiny_model) -> None:
    batched = tiny_model.answer(MOLECULES, INSTRUCTION, decode=DECODE, batch_size=8)
    single = [tiny_model.answer([s], INSTRUCTION, decode=DECODE)[0] for s in MOLECULES]
    assert [a.generation.token_ids for a in batched] == [a.generation.token_ids for a in single]
    assert all(len(a.generation.token_ids) <= 10 for a in batched)


def test_generation_matches_manual_greedy_loop(tiny_model) -> None:
    """HF generate (KV cache) == argmax over full forward passes without cache."""
    example = tiny_model.prepare("CCO", INSTRUCTION)
    got = tiny_model.generate([example], DecodeConfig(max_new_tokens=6))[0].token_ids
    from llamo_plugin.prompt.assemble import collate_prompts

    batch = collate_prompts([example.prompt], tiny_model.tokenizer.pad_token_id)
    with torch.no_grad():
        embeds = tiny_model.inputs_embeds(batch, tiny_model.encode_graphs([example.graph]))
        ids: list[int] = []
        for _ in range(6):
            logits = tiny_model.lm(inputs_embeds=embeds).logits[0, -1]
            nxt = int(logits.argmax())
            ids.append(nxt)
            if nxt == tiny_model.tokenizer.eos_token_id:
                break
            step = tiny_model.lm.get_input_embeddings()(torch.tensor([[nxt]]))
            embeds = torch.cat([embeds, step], dim=1)
    assert got == ids


def test_invalid_rows_get_status_not_exception(tiny_model) -> None:
    rows = ["CCO", "", None, "C1CC(", float("nan"), "CCO"]
    answers = tiny_model.answer(rows, INSTRUCTION, decode=DECODE)
    assert len(answers) == len(rows)
    assert [a.status for a in answers] == [
        "ok",
        "invalid_smiles",
        "invalid_smiles",
        "invalid_smiles",
        "invalid_smiles",
        "ok",
    ]
    assert answers[1].text is None and "empty" in answers[1].error
    assert "missing" in answers[2].error and "unparseable" in answers[3].error
    assert answers[0].text == answers[5].text


def test_per_row_instructions(tiny_model) -> None:
    a = tiny_model.answer(["CCO", "CCO"], instructions=["Describe it.", INSTRUCTION], decode=DECODE)
    b = tiny_model.answer(["CCO"], "Describe it.", decode=DECODE)
    assert a[0].generation.token_ids == b[0].generation.token_ids
    with pytest.raises(ValueError):
        tiny_model.answer(["CCO"], "x", instructions=["y"])


def test_cancellation_stops_generation(tiny_model) -> None:
    example = tiny_model.prepare("CCO", INSTRUCTION)
    out = tiny_model.generate([example], DecodeConfig(max_new_tokens=50), should_stop=lambda: True)
    assert len(out[0].token_ids) == 1
    assert out[0].stop_reason == "length"


def test_training_loss_is_finite_and_backpropagates(tiny_model) -> None:
    import copy

    model = copy.deepcopy(tiny_model).train()
    examples = [
        model.prepare(s, INSTRUCTION, answer="The molecule is an alcohol.") for s in ["CCO", "C"]
    ]
    loss = model(examples).loss
    assert torch.isfinite(loss)
    loss.backward()
    assert model.graph.projector.net[0].weight.grad.abs().sum() > 0
    assert model.graph.encoder.atom_encoder.atom_embedding_list[0].weight.grad.abs().sum() > 0


def test_width_mismatch_rejected(tiny_model) -> None:
    with pytest.raises(ConfigError, match="output_size"):
        LlamoModel(LlamoConfig(), tiny_model.lm, tiny_model.tokenizer)
