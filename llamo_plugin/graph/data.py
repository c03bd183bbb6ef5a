"""Stage 1 -> 2 (torch): molecules as PyTorch Geometric ``Data`` / ``Batch`` objects.

The chemistry stage stays numpy (:class:`~llamo_plugin.records.MolGraph`, no torch in
``chem/``); :func:`to_pyg` turns one molecule into a ``torch_geometric.data.Data`` with
PyG's standard names, so PyG tooling (``DataLoader``, ``Batch.from_data_list``, transforms)
applies as is:

- ``x`` ``[N, 9]`` int64 (OGB atom features), ``edge_index`` ``[2, E]`` int64 (both
  directions, row 0 source), ``edge_attr`` ``[E, 3]`` int64 (OGB bond features);
- ``motifs`` ``[M, 73]`` float32 functional-group vectors (``M = 0`` when extraction
  failed) and ``num_motifs`` ``[1]`` int64, so that any PyG collation (which concatenates
  ``motifs`` along atoms-like dim 0) still knows each molecule's share.

:class:`~llamo_plugin.graph.module.GraphTokenizer` (training and the PyTorch reference path)
takes the collated ``Batch``. The ONNX inference form keeps the numpy
:class:`~llamo_plugin.records.GraphBatch` (:mod:`.batching`, :mod:`.refinement`);
:func:`batch_from_graph_batch` converts one into the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from llamo_plugin.chem.motifs import MOTIF_FEATURE_SIZE
from llamo_plugin.records import GraphBatch, MolGraph


def to_pyg(graph: MolGraph) -> Data:
    """One molecule -> ``Data(x, edge_index, edge_attr, motifs, num_motifs)`` (see module
    docstring for shapes). The arrays are copied (the record stays immutable)."""
    motifs = (
        np.zeros((0, MOTIF_FEATURE_SIZE), dtype=np.float32)
        if graph.motifs is None
        else graph.motifs.astype(np.float32)
    )
    return Data(
        x=torch.tensor(graph.atom_features, dtype=torch.int64).reshape(-1, 9),
        edge_index=torch.tensor(graph.edge_index, dtype=torch.int64).reshape(2, -1),
        edge_attr=torch.tensor(graph.bond_features, dtype=torch.int64).reshape(-1, 3),
        motifs=torch.from_numpy(motifs.copy()).reshape(-1, MOTIF_FEATURE_SIZE),
        num_motifs=torch.tensor([motifs.shape[0]], dtype=torch.int64),
    )


def from_pyg(data: Data) -> MolGraph:
    """Inverse of :func:`to_pyg` (no motifs -> ``motifs=None``)."""
    motifs = data.motifs.detach().cpu().numpy()
    return MolGraph(
        atom_features=data.x.detach().cpu().numpy().astype(np.int64),
        edge_index=data.edge_index.detach().cpu().numpy().astype(np.int64),
        bond_features=data.edge_attr.detach().cpu().numpy().astype(np.int64),
        motifs=motifs if motifs.shape[0] else None,
    )


def collate_pyg(graphs: Sequence[MolGraph]) -> Batch:
    """``Batch.from_data_list`` of :func:`to_pyg` (atoms concatenated, ``batch``/``ptr`` set).

    Every molecule must have at least one atom (the chemistry stage guarantees it).
    """
    if not graphs:
        raise ValueError("cannot collate an empty list of molecules")
    if any(g.num_atoms < 1 for g in graphs):
        raise ValueError("every molecule needs at least one atom")
    return Batch.from_data_list([to_pyg(g) for g in graphs])


def batch_from_graph_batch(batch: GraphBatch) -> Batch:
    """The numpy :class:`GraphBatch` (ONNX path) as the ``Batch`` :func:`collate_pyg` builds
    from the same molecules (same tensors; ``to_data_list`` is not available on it)."""
    counts = batch.motif_mask.sum(axis=1).astype(np.int64)  # [B]
    sizes = np.bincount(batch.node_graph, minlength=batch.num_graphs)
    return Batch(
        x=torch.from_numpy(np.ascontiguousarray(batch.atom_features, dtype=np.int64)),
        edge_index=torch.from_numpy(np.ascontiguousarray(batch.edge_index, dtype=np.int64)),
        edge_attr=torch.from_numpy(np.ascontiguousarray(batch.bond_features, dtype=np.int64)),
        motifs=torch.from_numpy(np.ascontiguousarray(batch.motifs[batch.motif_mask])),
        num_motifs=torch.from_numpy(counts),
        batch=torch.from_numpy(np.ascontiguousarray(batch.node_graph, dtype=np.int64)),
        ptr=torch.from_numpy(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)),
    )


@dataclass(frozen=True)
class DenseLayout:
    """Where each atom and motif of a ``Batch`` sits in the projector's padded layouts.

    Shapes (N atoms, B molecules, A largest molecule, M most motifs, at least 1):
        node_dense_index ``[N]`` int64 (flat index into ``[B * A]``); node_mask ``[B, A]`` bool;
        motifs ``[B, M, 73]`` float32 (zero padded); motif_mask ``[B, M]`` bool.
    """

    node_dense_index: torch.Tensor
    node_mask: torch.Tensor
    motifs: torch.Tensor
    motif_mask: torch.Tensor


def _slots(counts: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For items grouped contiguously by molecule (``counts [B]`` per molecule): each item's
    flat index into ``[B * width]`` and the mask ``[B, width]`` of filled slots."""
    graph = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(graph.numel(), device=counts.device) - starts[graph]
    mask = torch.arange(width, device=counts.device)[None, :] < counts[:, None]
    return graph * width + slot, mask


def dense_layout(batch: Batch) -> DenseLayout:
    """The padded node and motif layouts of a collated ``batch`` (atoms contiguous per
    molecule, as ``Batch.from_data_list`` lays them out). One host sync each for the
    padded widths."""
    node_counts = batch.ptr[1:] - batch.ptr[:-1]  # [B]
    num_graphs = node_counts.numel()
    node_index, node_mask = _slots(node_counts, int(node_counts.max()))
    motif_counts = batch.num_motifs.reshape(-1)
    width = max(1, int(motif_counts.max()))  # at least one (masked) motif slot
    motif_index, motif_mask = _slots(motif_counts, width)
    motifs = batch.motifs.new_zeros(num_graphs * width, batch.motifs.shape[-1])
    motifs = motifs.index_copy(0, motif_index, batch.motifs).view(num_graphs, width, -1)
    return DenseLayout(node_index, node_mask, motifs, motif_mask)
