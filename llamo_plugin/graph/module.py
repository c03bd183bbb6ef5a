"""Stages 2 + 3: the graph tokenizer (GIN + projector), on a PyG ``Batch``.

:meth:`GraphTokenizer.forward` takes the ``torch_geometric.data.Batch`` of
:func:`~llamo_plugin.graph.data.collate_pyg` (training and the PyTorch reference path);
:meth:`GraphTokenizer.forward_tensors` is the same computation on seven plain tensors
(``GRAPH_INPUT_NAMES``), no RDKit and no Python-level per-molecule loop. The ONNX inference
form is :class:`~llamo_plugin.graph.deduplicated.DedupGraphTokenizer`, built from this module.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.data import Batch, Data

from llamo_plugin.config import GraphEncoderConfig, ProjectorConfig
from llamo_plugin.graph.data import dense_layout
from llamo_plugin.graph.gin import GINEncoder
from llamo_plugin.graph.projector import MultiLevelProjector

#: Input names, in order, of :meth:`GraphTokenizer.forward_tensors` (the plain-tensor form).
GRAPH_INPUT_NAMES = (
    "atom_features",
    "edge_index",
    "bond_features",
    "node_dense_index",
    "node_mask",
    "motifs",
    "motif_mask",
)


class GraphTokenizer(nn.Module):
    """GIN encoder + multi-level projector: a molecule batch -> graph tokens.

    ``forward(batch)``: a PyG ``Batch`` with ``x [N, 9]``, ``edge_index [2, E]``,
    ``edge_attr [E, 3]`` (int64), ``motifs [sum M, 73]`` float32, ``num_motifs [B]`` int64
    (:func:`~llamo_plugin.graph.data.to_pyg`) -> ``[B, num_graph_tokens, output_size]``.

    ``forward_tensors`` shapes (N atoms, E directed edges, B molecules, A max atoms, M max motifs):
        atom_features ``[N, 9]`` int64; edge_index ``[2, E]`` int64; bond_features ``[E, 3]``
        int64; node_dense_index ``[N]`` int64 (index into ``B*A``); node_mask ``[B, A]`` bool;
        motifs ``[B, M, 73]`` float32; motif_mask ``[B, M]`` bool
        -> graph tokens ``[B, num_graph_tokens, output_size]`` float32
    """

    def __init__(self, graph: GraphEncoderConfig, projector: ProjectorConfig) -> None:
        super().__init__()
        self.encoder = GINEncoder(graph)
        self.projector = MultiLevelProjector(projector)

    @property
    def num_graph_tokens(self) -> int:
        return self.projector.config.num_graph_tokens

    def densify(
        self, h: torch.Tensor, node_dense_index: torch.Tensor, node_mask: torch.Tensor
    ) -> torch.Tensor:
        """``[N, d]`` -> ``[B, A, d]`` (zeros at padding) with one ``index_copy``."""
        batch, atoms = node_mask.shape
        flat = h.new_zeros(batch * atoms, h.shape[1]).index_copy(0, node_dense_index, h)
        return flat.view(batch, atoms, h.shape[1])

    def forward(self, batch: Batch | Data) -> torch.Tensor:
        """Graph tokens ``[B, T, D]`` (fp32) for a collated ``batch`` (a single ``Data`` is
        one molecule)."""
        if not isinstance(batch, Batch):
            batch = Batch.from_data_list([batch])
        layout = dense_layout(batch)
        return self.forward_tensors(
            batch.x,
            batch.edge_index,
            batch.edge_attr,
            layout.node_dense_index,
            layout.node_mask,
            layout.motifs,
            layout.motif_mask,
        )

    def forward_tensors(
        self,
        atom_features: torch.Tensor,
        edge_index: torch.Tensor,
        bond_features: torch.Tensor,
        node_dense_index: torch.Tensor,
        node_mask: torch.Tensor,
        motifs: torch.Tensor,
        motif_mask: torch.Tensor,
    ) -> torch.Tensor:
        levels = self.encoder(atom_features, edge_index, bond_features)
        return self.projector.forward_flat(levels, node_dense_index, node_mask, motifs, motif_mask)
