"""Colour refinement (llamo_plugin.graph.refinement) and the class-space graph tokenizer
(llamo_plugin.graph.deduplicated): exact classes, same tokens as GraphTokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llamo_plugin.config import GraphEncoderConfig, ProjectorConfig
from llamo_plugin.graph.batching import collate_graphs
from llamo_plugin.graph.deduplicated import DedupGraphTokenizer, dedup_torch_inputs
from llamo_plugin.graph.module import GraphTokenizer
from llamo_plugin.graph.refinement import _unique_rows, class_batch_inputs, refine_batch

from .helpers import (
    BIG_SMILES,
    HIDDEN,
    OUTPUT,
    batch_inputs,
    graphs,
    make_tokenizer,
    rescale_,
    tokens,
)

MIXED = [
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin
    "C",  # methane: no bonds, no motifs
    "[Na+].[Cl-]",  # salt: two fragments, no bonds
    "[He]",
    BIG_SMILES,  # > 100 atoms, long repetitive chain
    "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
    "OCC(O)CO",  # glycerol: symmetric
    "c1ccccc1",
    "CCCCCCCCCCCCCCCCCC(=O)O",  # stearic acid: a long chain
]


@torch.no_grad()
def dedup_tokens(model: torch.nn.Module, smiles: list[str]) -> torch.Tensor:
    batch = collate_graphs(graphs(smiles))
    layers = model.encoder.config.num_layers
    named = class_batch_inputs(batch, refine_batch(batch, layers))
    return DedupGraphTokenizer(model).eval()(**dedup_torch_inputs(named, layers))


def test_unique_rows_is_exact_and_lexicographic() -> None:
    rows = np.array([[3, -1, 2], [0, 5, 5], [3, -1, 2], [0, 5, -1], [2**40, 0, 1]])
    uniq, inverse = _unique_rows(rows)
    want, want_inverse = np.unique(rows, axis=0, return_inverse=True)
    np.testing.assert_array_equal(uniq, want)
    np.testing.assert_array_equal(inverse, want_inverse.reshape(-1))
    np.testing.assert_array_equal(uniq[inverse], rows)


def test_symmetric_atoms_share_classes() -> None:
    benzene = refine_batch(collate_graphs(graphs(["c1ccccc1"])), num_layers=5)
    assert [p.shape[0] for p in benzene.parents] == [1] * 5  # six equal carbons
    glycerol = refine_batch(collate_graphs(graphs(["OCC(O)CO"])), num_layers=3)
    # levels: 3 atom types (O, CH2, CH), then the two ends stay equal to each other
    assert glycerol.node_classes.max(axis=1).tolist() == [2, 3, 3, 3]
    ends = glycerol.node_classes[:, [0, 5]]
    assert (ends[:, 0] == ends[:, 1]).all()


def test_classes_are_exact_gin_states() -> None:
    """Atoms in one class have identical GIN states at that level, in the reference GIN."""
    model = make_tokenizer()
    mols = graphs(MIXED + MIXED[::-1])
    batch = collate_graphs(mols)
    classes = refine_batch(batch, model.encoder.config.num_layers)
    inputs = batch_inputs(mols)
    with torch.no_grad():
        levels = model.encoder(
            inputs["atom_features"], inputs["edge_index"], inputs["bond_features"]
        )
    for k, h in enumerate(levels):
        index = torch.from_numpy(classes.node_classes[k])
        representative = torch.zeros(int(index.max()) + 1, h.shape[1]).index_copy(0, index, h)
        torch.testing.assert_close(h, representative[index], atol=1e-5, rtol=1e-5)
    # and refinement does separate: the last level has more classes than the first
    assert classes.node_classes[-1].max() > classes.node_classes[0].max()


def test_no_bonds_at_all() -> None:
    classes = refine_batch(collate_graphs(graphs(["C", "[Na+].[Cl-]", "O"])), num_layers=2)
    assert classes.messages[0].shape[1] == 1  # padded to degree 1
    assert (classes.messages[0] == classes.message_sources[0].shape[0]).all()  # all padding


@pytest.mark.parametrize("order", ["motif_first", "motif_last"])
def test_dedup_tokenizer_equals_graph_tokenizer(order: str) -> None:
    model = make_tokenizer(token_order=order)
    want = tokens(model, MIXED)
    got = dedup_tokens(model, MIXED)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_dedup_tokenizer_with_per_level_attention() -> None:
    model = make_tokenizer(shared_level_attention=False)
    torch.testing.assert_close(
        dedup_tokens(model, MIXED), tokens(model, MIXED), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("shared", [True, False])
def test_dedup_tokenizer_with_few_layers(layers: int, shared: bool) -> None:
    """With one layer, layer 1 (first linear before the neighbour sum) is also the last
    (second linear folded into the projector): both rearrangements on the same layer."""
    graph = GraphEncoderConfig(hidden_size=HIDDEN, num_layers=layers)
    proj = ProjectorConfig(
        input_size=HIDDEN,
        output_size=OUTPUT,
        mlp_depth=2,
        num_levels=layers + 1,
        shared_level_attention=shared,
    )
    torch.manual_seed(layers)
    model = rescale_(GraphTokenizer(graph, proj), seed=layers).eval()
    torch.testing.assert_close(
        dedup_tokens(model, MIXED), tokens(model, MIXED), atol=1e-5, rtol=1e-5
    )


def test_dedup_tokens_do_not_depend_on_batch_company() -> None:
    model = make_tokenizer()
    together = dedup_tokens(model, MIXED)
    for i, smiles in enumerate(MIXED):
        torch.testing.assert_close(
            together[i : i + 1], dedup_tokens(model, [smiles]), atol=1e-5, rtol=1e-5
        )


def test_batch_norm_is_folded_from_running_statistics() -> None:
    model = make_tokenizer()
    dedup = DedupGraphTokenizer(model)
    linear, norm = model.encoder.gnns[0].mlp[0], model.encoder.gnns[0].mlp[1]
    x = torch.randn(7, linear.in_features)
    with torch.no_grad():
        torch.testing.assert_close(dedup.first[0](x), norm(linear(x)), atol=1e-5, rtol=1e-5)
