"""Tests for llamo_plugin.graph.module: GIN + projector behind the fixed tensor signature."""

from __future__ import annotations

import inspect

import pytest
import torch

from llamo_plugin.config import GraphEncoderConfig, ProjectorConfig
from llamo_plugin.graph.data import collate_pyg, to_pyg
from llamo_plugin.graph.module import GRAPH_INPUT_NAMES, GraphTokenizer

from .helpers import BIG_SMILES, OUTPUT, batch_inputs, graphs, make_tokenizer, tokens

MIXED = [
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin: motifs, rings
    "C",  # methane: no motifs, no bonds
    "[Na+].[Cl-]",  # no bonds, two fragments
    "[He]",  # a single atom
    BIG_SMILES,  # more than 100 atoms
    "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
]


def test_parameter_count_at_llm_width() -> None:
    with torch.device("meta"):
        model = GraphTokenizer(GraphEncoderConfig(), ProjectorConfig())
    assert sum(p.numel() for p in model.encoder.parameters()) == 1_885_205
    assert sum(p.numel() for p in model.projector.parameters()) == 85_892_756
    assert model.num_graph_tokens == 28


def test_forward_tensors_signature_matches_input_names() -> None:
    params = list(inspect.signature(GraphTokenizer.forward_tensors).parameters)[1:]
    assert tuple(params) == GRAPH_INPUT_NAMES
    assert list(inspect.signature(GraphTokenizer.forward).parameters)[1:] == ["batch"]


def test_pyg_batch_equals_plain_tensor_form() -> None:
    """forward(PyG Batch) and forward_tensors(numpy collation) compute the same tokens: the
    PyG dense layout matches the numpy one exactly."""
    model = make_tokenizer()
    mols = graphs(MIXED)
    with torch.no_grad():
        via_pyg = model(collate_pyg(mols))
        via_tensors = model.forward_tensors(**batch_inputs(mols))
    assert torch.equal(via_pyg, via_tensors)


def test_single_data_is_one_molecule() -> None:
    model = make_tokenizer()
    mol = graphs(["CC(=O)Oc1ccccc1C(=O)O"])[0]
    with torch.no_grad():
        torch.testing.assert_close(model(to_pyg(mol)), model(collate_pyg([mol])))


def test_densify() -> None:
    model = make_tokenizer()
    h = torch.arange(1, 7, dtype=torch.float32)[:, None].repeat(1, 2)  # rows 1..6
    mask = torch.tensor([[True, True, True], [True, True, False], [True, False, False]])
    index = torch.tensor([0, 1, 2, 3, 4, 6])
    dense = model.densify(h, index, mask)
    assert dense.shape == (3, 3, 2)
    assert dense[..., 0].tolist() == [[1, 2, 3], [4, 5, 0], [6, 0, 0]]


def test_output_shape_and_finite() -> None:
    out = tokens(make_tokenizer(), MIXED)
    assert out.shape == (len(MIXED), 28, OUTPUT)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert out.abs().mean() > 1e-2  # not vacuously small for the comparisons below


def test_batch_equals_each_molecule_alone() -> None:
    model = make_tokenizer()
    together = tokens(model, MIXED)
    for i, smiles in enumerate(MIXED):
        alone = tokens(model, [smiles])
        torch.testing.assert_close(together[i : i + 1], alone, atol=1e-5, rtol=1e-5)
    # and molecules do get different tokens
    assert not torch.allclose(together[0], together[5], atol=1e-3)


def test_padding_atoms_do_not_change_tokens() -> None:
    model = make_tokenizer()
    small = tokens(model, ["CCO"])
    padded = tokens(model, ["CCO", BIG_SMILES])
    assert graphs([BIG_SMILES])[0].num_atoms > 100
    torch.testing.assert_close(padded[:1], small, atol=1e-5, rtol=1e-5)


def test_batch_order_does_not_matter() -> None:
    model = make_tokenizer()
    forward = tokens(model, MIXED)
    backward = tokens(model, MIXED[::-1])
    torch.testing.assert_close(backward.flip(0), forward, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("order", "slots"), [("motif_first", slice(0, 4)), ("motif_last", slice(24, 28))]
)
def test_molecule_without_motifs_uses_raw_motif_queries(order: str, slots: slice) -> None:
    model = make_tokenizer(token_order=order)
    batch = graphs(["C", "CCO"])
    assert batch[0].motifs is None
    inputs = batch_inputs(batch)
    assert inputs["motif_mask"][0].any().item() is False
    with torch.no_grad():
        out = model(collate_pyg(batch))
        proj = model.projector
        raw = proj.motif_tokens(inputs["motifs"], inputs["motif_mask"])
        expected = proj.net(proj.layer_norm(proj.motif_query_tokens))
    assert torch.equal(raw[0], proj.motif_query_tokens)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0, slots], expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out[1, slots], expected, atol=1e-3)


def test_token_order_motif_first_vs_last() -> None:
    first = make_tokenizer(token_order="motif_first")
    last = make_tokenizer(seed=3, token_order="motif_last")
    last.load_state_dict(first.state_dict())
    a = tokens(first, MIXED[:3])
    b = tokens(last, MIXED[:3])
    torch.testing.assert_close(b[:, -4:], a[:, :4], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(b[:, :-4], a[:, 4:], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(a[:, :4], a[:, -4:], atol=1e-3)


@pytest.mark.parametrize("shared", [True, False])
def test_shared_and_per_level_attention_both_run(shared: bool) -> None:
    model = make_tokenizer(shared_level_attention=shared)
    assert len(model.projector.cross_attention) == (1 if shared else 6)
    out = tokens(model, MIXED[:4])
    assert out.shape == (4, 28, OUTPUT)
    assert torch.isfinite(out).all()


def test_eval_is_deterministic() -> None:
    model = make_tokenizer()
    assert not model.training
    a = tokens(model, MIXED)
    b = tokens(model, MIXED)
    assert torch.equal(a, b)


def test_gin_levels_feed_the_projector() -> None:
    model = make_tokenizer()
    before = tokens(model, ["CCO"])
    with torch.no_grad():
        model.encoder.batch_norms[4].bias.add_(1.0)  # only the last level changes
    after = tokens(model, ["CCO"])
    changed = (before - after).abs().amax(dim=(0, 2)) > 1e-6
    assert changed.tolist() == [i >= 24 for i in range(28)]  # motif first, then L0..L5
