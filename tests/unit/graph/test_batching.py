"""Tests for llamo_plugin.graph.batching: flat collation, dense indices, motif padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llamo_plugin.graph.batching import collate_graphs, graph_batch_inputs, to_torch
from llamo_plugin.graph.module import GRAPH_INPUT_NAMES
from llamo_plugin.records import MolGraph

from .helpers import graphs


def test_collate_offsets_and_edges() -> None:
    cco, formaldehyde, methane = graphs(["CCO", "C=O", "C"])
    batch = collate_graphs([cco, formaldehyde, methane])
    assert batch.num_graphs == 3
    assert batch.max_atoms == 3
    assert batch.atom_features.shape == (6, 9)
    np.testing.assert_array_equal(batch.atom_features[:3], cco.atom_features)
    np.testing.assert_array_equal(batch.atom_features[3:5], formaldehyde.atom_features)
    np.testing.assert_array_equal(batch.atom_features[5:], methane.atom_features)
    # CCO edges as is; C=O edges shifted by 3; methane has none
    assert batch.edge_index.tolist() == [[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]]
    assert batch.bond_features.tolist() == [[0, 0, 0]] * 4 + [[1, 0, 0]] * 2
    assert batch.node_graph.tolist() == [0, 0, 0, 1, 1, 2]
    assert batch.node_slot.tolist() == [0, 1, 2, 0, 1, 0]


def test_collate_motif_padding_and_mask() -> None:
    mols = graphs(["CCO", "C", "CC(=O)Oc1ccccc1C(=O)O"])
    batch = collate_graphs(mols)
    assert batch.motifs.shape == (3, 3, 73)
    assert batch.motifs.dtype == np.float32
    assert batch.motif_mask.dtype == np.bool_
    assert batch.motif_mask.tolist() == [
        [True, True, False],
        [False, False, False],
        [True, True, True],
    ]
    np.testing.assert_array_equal(batch.motifs[0, :2], mols[0].motifs)
    np.testing.assert_array_equal(batch.motifs[2], mols[2].motifs)
    assert not batch.motifs[0, 2].any()
    assert not batch.motifs[1].any()


@pytest.mark.parametrize("smiles", [["C"], ["C", "C"]])
def test_collate_without_any_motifs_keeps_one_slot(smiles: list[str]) -> None:
    batch = collate_graphs(graphs(smiles))
    assert batch.motifs.shape == (len(smiles), 1, 73)
    assert not batch.motif_mask.any()


def test_collate_all_bondless() -> None:
    batch = collate_graphs(graphs(["[Na+].[Cl-]", "[He]"]))
    assert batch.edge_index.shape == (2, 0)
    assert batch.bond_features.shape == (0, 3)
    assert batch.edge_index.dtype == np.int64
    assert batch.bond_features.dtype == np.int64
    assert batch.node_graph.tolist() == [0, 0, 1]


def test_collate_rejects_empty_inputs() -> None:
    with pytest.raises(ValueError):
        collate_graphs([])
    empty = MolGraph(
        np.zeros((0, 9), np.int64), np.zeros((2, 0), np.int64), np.zeros((0, 3), np.int64), None
    )
    with pytest.raises(ValueError):
        collate_graphs([*graphs(["C"]), empty])


def test_graph_batch_inputs() -> None:
    batch = collate_graphs(graphs(["CCO", "C=O", "C"]))
    inputs = graph_batch_inputs(batch)
    assert tuple(inputs) == GRAPH_INPUT_NAMES
    assert inputs["node_dense_index"].tolist() == [0, 1, 2, 3, 4, 6]
    assert inputs["node_mask"].tolist() == [
        [True, True, True],
        [True, True, False],
        [True, False, False],
    ]
    assert inputs["node_mask"].dtype == np.bool_
    assert inputs["node_dense_index"].dtype == np.int64


def test_to_torch_dtypes() -> None:
    tensors = to_torch(graph_batch_inputs(collate_graphs(graphs(["CCO", "C"]))))
    assert tensors["atom_features"].dtype == torch.int64
    assert tensors["edge_index"].dtype == torch.int64
    assert tensors["bond_features"].dtype == torch.int64
    assert tensors["node_dense_index"].dtype == torch.int64
    assert tensors["node_mask"].dtype == torch.bool
    assert tensors["motifs"].dtype == torch.float32
    assert tensors["motif_mask"].dtype == torch.bool
    assert tensors["edge_index"].shape == (2, 4)
