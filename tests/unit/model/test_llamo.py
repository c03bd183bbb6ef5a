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


def _generate(model, items, decode=DECODE):
    """Greedy generations for (SMILES, instruction) pairs in one batch."""
    return model.generate([model.prepare(s, i) for s, i in items], decode)


def test_batched_generation_equals_batch_of_one(tiny_model) -> None:
    items = [(s, INSTRUCTION) for s in MOLECULES] + [("CCO", "Describe it.")]
    batched = _generate(tiny_model, items)
    single = [_generate(tiny_model, [item])[0] for item in items]
    assert [g.token_ids for g in batched] == [g.token_ids for g in single]
    assert all(len(g.token_ids) <= 10 for g in batched)
    assert batched[1].token_ids != batched[-1].token_ids  # per-row instructions are honoured
    assert all(g.stop_reason in ("eos", "length") for g in batched)


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
    assert list(got) == ids


def test_invalid_molecules_raise_in_prepare(tiny_model) -> None:
    """The model only computes: refusing bad rows with a status is the pipeline's job."""
    from llamo_plugin.errors import InvalidSmilesError

    for bad in ["", None, "C1CC(", float("nan")]:
        with pytest.raises(InvalidSmilesError):
            tiny_model.prepare(bad, INSTRUCTION)


def test_cancellation_raises(tiny_model) -> None:
    """transformers' generate keeps the one cancellation contract of every LM path (the hf
    backend's fast decoder: tests/unit/backends/hf/test_backend.py): no partial answers."""
    from llamo_plugin.errors import CancelledError

    example = tiny_model.prepare("CCO", INSTRUCTION)
    with pytest.raises(CancelledError):
        tiny_model.generate_with_graph_tokens(
            [example.prompt],
            tiny_model.encode_graphs([example.graph]),
            DecodeConfig(max_new_tokens=50),
            should_stop=lambda: True,
        )


def test_reference_generate_refuses_the_copy_bias(tiny_model) -> None:
    """Only the hf backend's fast decoder applies a copy bias: the reference says so rather
    than silently decoding without it."""
    example = tiny_model.prepare("CCO", INSTRUCTION)
    with pytest.raises(ConfigError, match="copy_bias"):
        tiny_model.generate([example], DECODE.replace(copy_bias=2.0))


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
