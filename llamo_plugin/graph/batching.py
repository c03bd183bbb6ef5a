"""Stage 1 -> 2: collate molecules into one flat graph batch (numpy, no torch).

This is the ONNX inference path's batch (:mod:`.refinement` works on it); the PyTorch model
takes a PyG ``Batch`` (:func:`llamo_plugin.graph.data.collate_pyg`).

Atoms of all molecules are concatenated (PyG layout); each atom also gets its position in a
dense ``[B, max_atoms]`` layout, so the encoder can densify with one ``index_copy`` instead of
a per-molecule loop. Motif vectors are zero-padded to ``[B, M, 73]`` with a mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from llamo_plugin.chem.motifs import MOTIF_FEATURE_SIZE
from llamo_plugin.records import GraphBatch, MolGraph


def collate_graphs(graphs: Sequence[MolGraph]) -> GraphBatch:
    """Concatenate ``graphs`` into a :class:`GraphBatch`.

    Every molecule must have at least one atom (the chemistry stage guarantees it).
    Molecules whose motifs are ``None`` get an all-False row in ``motif_mask``.
    """
    if not graphs:
        raise ValueError("cannot collate an empty list of molecules")
    sizes = np.asarray([g.num_atoms for g in graphs], dtype=np.int64)
    if (sizes < 1).any():
        raise ValueError("every molecule needs at least one atom")
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    num_graphs = len(graphs)
    max_atoms = int(sizes.max())

    node_graph = np.repeat(np.arange(num_graphs, dtype=np.int64), sizes)
    node_slot = np.arange(int(sizes.sum()), dtype=np.int64) - np.repeat(offsets, sizes)

    edge_index = np.concatenate(
        [g.edge_index + off for g, off in zip(graphs, offsets, strict=True)], axis=1
    ).astype(np.int64)
    num_motifs = [0 if g.motifs is None else int(g.motifs.shape[0]) for g in graphs]
    max_motifs = max(1, *num_motifs)
    motifs = np.zeros((num_graphs, max_motifs, MOTIF_FEATURE_SIZE), dtype=np.float32)
    motif_mask = np.zeros((num_graphs, max_motifs), dtype=bool)
    for i, g in enumerate(graphs):
        if g.motifs is not None:
            motifs[i, : num_motifs[i]] = g.motifs
            motif_mask[i, : num_motifs[i]] = True

    return GraphBatch(
        atom_features=np.concatenate([g.atom_features for g in graphs]).astype(np.int64),
        edge_index=edge_index.reshape(2, -1),
        bond_features=np.concatenate([g.bond_features for g in graphs]).astype(np.int64),
        node_graph=node_graph,
        node_slot=node_slot,
        motifs=motifs,
        motif_mask=motif_mask,
        num_graphs=num_graphs,
        max_atoms=max_atoms,
    )


def graph_batch_inputs(batch: GraphBatch) -> dict[str, np.ndarray]:
    """The fixed-signature inputs of :class:`~llamo_plugin.graph.module.GraphTokenizer`.

    Returns numpy arrays keyed by input name (the same names the ONNX export uses):
    ``atom_features [N,9]``, ``edge_index [2,E]``, ``bond_features [E,3]``,
    ``node_dense_index [N]`` (flat index into ``[B*max_atoms]``), ``node_mask [B,max_atoms]``,
    ``motifs [B,M,73]``, ``motif_mask [B,M]``.
    """
    node_mask = np.zeros((batch.num_graphs, batch.max_atoms), dtype=bool)
    node_mask[batch.node_graph, batch.node_slot] = True
    return {
        "atom_features": batch.atom_features,
        "edge_index": batch.edge_index,
        "bond_features": batch.bond_features,
        "node_dense_index": batch.node_graph * batch.max_atoms + batch.node_slot,
        "node_mask": node_mask,
        "motifs": batch.motifs,
        "motif_mask": batch.motif_mask,
    }


def to_torch(inputs: dict[str, np.ndarray], device: Any = "cpu") -> dict[str, Any]:
    """Convert :func:`graph_batch_inputs` to torch tensors on ``device``."""
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in inputs.items()}
