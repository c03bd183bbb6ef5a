"""Tests for llamo_plugin.graph.data: MolGraph <-> PyG Data, PyG batches, dense layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from llamo_plugin.graph.batching import collate_graphs, graph_batch_inputs
from llamo_plugin.graph.data import (
    batch_from_graph_batch,
    collate_pyg,
    dense_layout,
    from_pyg,
    to_pyg,
)
from llamo_plugin.records import MolGraph

from .helpers import BIG_SMILES, graphs, make_tokenizer

MIXED = [
    "CC(=O)Oc1ccccc1C(=O)O",  # motifs
    "C",  # no bonds, no motifs
    "[Na+].[Cl-]",  # two fragments, no bonds
    BIG_SMILES,  # > 100 atoms
    "CCO",
    "c1ccncc1",
]


def _assert_same_graph(a: MolGraph, b: MolGraph) -> None:
    np.testing.assert_array_equal(a.atom_features, b.atom_features)
    np.testing.assert_array_equal(a.edge_index, b.edge_index)
    np.testing.assert_array_equal(a.bond_features, b.bond_features)
    assert (a.motifs is None) == (b.motifs is None)
    if a.motifs is not None:
        np.testing.assert_array_equal(a.motifs, b.motifs)


def test_to_pyg_names_shapes_and_dtypes() -> None:
    aspirin, methane = graphs(["CC(=O)Oc1ccccc1C(=O)O", "C"])
    data = to_pyg(aspirin)
    assert data.num_nodes == 13 and data.num_edges == 26
    assert data.x.shape == (13, 9) and data.x.dtype == torch.int64
    assert data.edge_index.shape == (2, 26) and data.edge_index.dtype == torch.int64
    assert data.edge_attr.shape == (26, 3) and data.edge_attr.dtype == torch.int64
    assert aspirin.motifs is not None
    assert data.motifs.shape == aspirin.motifs.shape and data.motifs.dtype == torch.float32
    assert data.num_motifs.tolist() == [aspirin.motifs.shape[0]]
    assert data.is_undirected()
    empty = to_pyg(methane)
    assert methane.motifs is None
    assert empty.edge_index.shape == (2, 0) and empty.edge_attr.shape == (0, 3)
    assert empty.motifs.shape == (0, 73) and empty.num_motifs.tolist() == [0]


def test_round_trip_through_pyg_and_batch() -> None:
    mols = graphs(MIXED)
    for mol in mols:
        _assert_same_graph(from_pyg(to_pyg(mol)), mol)
    batch = collate_pyg(mols)
    assert batch.num_graphs == len(mols)
    for mol, data in zip(mols, batch.to_data_list(), strict=True):
        _assert_same_graph(from_pyg(data), mol)


def test_collate_pyg_equals_numpy_collation() -> None:
    """The PyG batch and the numpy GraphBatch (ONNX path) hold the same molecules; the
    conversion of one into the other gives the same tensors."""
    mols = graphs(MIXED)
    pyg = collate_pyg(mols)
    flat = collate_graphs(mols)
    np.testing.assert_array_equal(pyg.x.numpy(), flat.atom_features)
    np.testing.assert_array_equal(pyg.edge_index.numpy(), flat.edge_index)
    np.testing.assert_array_equal(pyg.edge_attr.numpy(), flat.bond_features)
    np.testing.assert_array_equal(pyg.batch.numpy(), flat.node_graph)
    converted = batch_from_graph_batch(flat)
    for key in ("x", "edge_index", "edge_attr", "batch", "ptr", "motifs", "num_motifs"):
        assert torch.equal(converted[key], pyg[key]), key
    assert converted.num_graphs == pyg.num_graphs


@pytest.mark.parametrize(
    "smiles", [MIXED, ["C"], ["C", "[He]"], ["CCO", "CCO"], MIXED[::-1]], ids=str
)
def test_dense_layout_equals_numpy_inputs(smiles: list[str]) -> None:
    mols = graphs(smiles)
    layout = dense_layout(collate_pyg(mols))
    want = graph_batch_inputs(collate_graphs(mols))
    np.testing.assert_array_equal(layout.node_dense_index.numpy(), want["node_dense_index"])
    np.testing.assert_array_equal(layout.node_mask.numpy(), want["node_mask"])
    np.testing.assert_array_equal(layout.motifs.numpy(), want["motifs"])
    np.testing.assert_array_equal(layout.motif_mask.numpy(), want["motif_mask"])
    assert layout.node_mask.dtype == torch.bool and layout.motifs.dtype == torch.float32


def test_collate_pyg_rejects_empty_inputs() -> None:
    with pytest.raises(ValueError):
        collate_pyg([])
    empty = MolGraph(
        np.zeros((0, 9), np.int64), np.zeros((2, 0), np.int64), np.zeros((0, 3), np.int64), None
    )
    with pytest.raises(ValueError):
        collate_pyg([*graphs(["C"]), empty])


def test_pyg_data_loader_batches_feed_the_tokenizer() -> None:
    """PyG tooling as is: a DataLoader over to_pyg items yields batches the tokenizer takes,
    with the tokens of one collate_pyg batch."""
    model = make_tokenizer()
    mols = graphs(MIXED)
    loader = DataLoader([to_pyg(m) for m in mols], batch_size=4, shuffle=False)
    with torch.no_grad():
        parts = [model(batch) for batch in loader]
        whole = model(collate_pyg(mols))
    assert all(isinstance(b, Batch) for b in loader)
    torch.testing.assert_close(torch.cat(parts), whole, atol=1e-5, rtol=1e-5)
