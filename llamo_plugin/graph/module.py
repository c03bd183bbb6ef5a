"""Stages 2 + 3 behind one fixed tensor signature: the graph tokenizer.

This is the export boundary (ONNX): plain tensors in, graph tokens out, no RDKit and no
Python-level per-molecule loop.
"""

from __future__ import annotations

import torch
from torch import nn

from llamo_plugin.config import GraphEncoderConfig, ProjectorConfig
from llamo_plugin.graph.gin import GINEncoder
from llamo_plugin.graph.projector import MultiLevelProjector

#: Input names, in order, of :meth:`GraphTokenizer.forward` (and of the ONNX graph).
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

    Shapes (N atoms, E directed edges, B molecules, A max atoms, M max motifs):
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

    def forward(
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
