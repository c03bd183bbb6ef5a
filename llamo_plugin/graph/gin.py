"""Stage 2: the GIN graph encoder of LLaMo (MoleculeSTM's GNN; reference §3).

Module and attribute names follow the original (``atom_encoder.atom_embedding_list``,
``gnns.{l}.mlp``, ``gnns.{l}.eps``, ``gnns.{l}.bond_encoder``, ``batch_norms``) so the official
checkpoint maps onto it key for key. Each layer is a ``torch_geometric.nn.MessagePassing``
(:class:`GINConv`, as in LLaMo's ``molecule_stm.py``); the ONNX inference form computes the same
layers in its own exact rearrangement (:mod:`llamo_plugin.graph.deduplicated`) from these
modules' weights.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import MessagePassing

from llamo_plugin.config import GraphEncoderConfig


class FeatureEmbedding(nn.Module):
    """Sum of one embedding table per integer feature column (OGB Atom/BondEncoder).

    Shapes:
        input: ``[K, C]`` int64 (C columns); output: ``[K, hidden]``.
    """

    def __init__(self, vocab_sizes: tuple[int, ...], hidden: int, list_name: str) -> None:
        super().__init__()
        self.list_name = list_name
        setattr(self, list_name, nn.ModuleList(nn.Embedding(v, hidden) for v in vocab_sizes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        tables = getattr(self, self.list_name)
        out = tables[0](features[:, 0])
        for col in range(1, len(tables)):
            out = out + tables[col](features[:, col])
        return out


class GINConv(MessagePassing):
    """One GIN layer with its own bond encoder (the original's ``GINConv``).

    ``m_i = sum_{j->i} ReLU(h_j + BondEmb(e_ji))`` (``message``, aggregation ``"add"``, flow
    source -> target); ``out_i = MLP((1 + eps) * h_i + m_i)``. No self-loops.

    Shapes:
        x: ``[N, D]``, edge_index: ``[2, E]`` (row 0 source, row 1 target),
        edge_attr: ``[E, 3]`` int64 bond features -> ``[N, D]``
    """

    def __init__(self, hidden: int, bond_vocab: tuple[int, ...], bn_eps: float) -> None:
        super().__init__(aggr="add")
        self.mlp = nn.Sequential(
            nn.Linear(hidden, 2 * hidden),
            nn.BatchNorm1d(2 * hidden, eps=bn_eps),
            nn.ReLU(),
            nn.Linear(2 * hidden, hidden),
        )
        self.eps = nn.Parameter(torch.zeros(1))
        self.bond_encoder = FeatureEmbedding(bond_vocab, hidden, "bond_embedding_list")

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor
    ) -> torch.Tensor:
        # Under bf16 autocast x may be bf16 while the bond embeddings are fp32: the messages,
        # and so their sum, are then fp32 (the scatter sums in the messages' dtype).
        aggregated = self.propagate(edge_index, x=x, edge_attr=self.bond_encoder(edge_attr))
        return self.mlp((1 + self.eps) * x + aggregated)

    def message(self, x_j: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        """``[E, D]``: ``ReLU(h_source + bond embedding)``."""
        return torch.relu(x_j + edge_attr)


class GINEncoder(nn.Module):
    """The 5 x 300 GIN; returns the atom embeddings and every layer's node states.

    Takes PyG's tensors (``batch.x``, ``batch.edge_index``, ``batch.edge_attr``).

    Shapes:
        atom_features ``[N, 9]``, edge_index ``[2, E]``, bond_features ``[E, 3]``
        -> list of ``num_layers + 1`` tensors ``[N, hidden]`` (``h_0`` = atom embeddings).
    """

    def __init__(self, config: GraphEncoderConfig) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.atom_encoder = FeatureEmbedding(config.atom_vocab_sizes, d, "atom_embedding_list")
        self.gnns = nn.ModuleList(
            GINConv(d, config.bond_vocab_sizes, config.batch_norm_eps)
            for _ in range(config.num_layers)
        )
        self.batch_norms = nn.ModuleList(
            nn.BatchNorm1d(d, eps=config.batch_norm_eps) for _ in range(config.num_layers)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """LLaMo's effective init (HF ``_init_weights``): N(0, 0.02) linears and embeddings."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)

    def forward(
        self, atom_features: torch.Tensor, edge_index: torch.Tensor, bond_features: torch.Tensor
    ) -> list[torch.Tensor]:
        h = self.atom_encoder(atom_features)
        levels = [h]
        last = len(self.gnns) - 1
        for layer, (gnn, norm) in enumerate(zip(self.gnns, self.batch_norms, strict=True)):
            h = norm(gnn(h, edge_index, bond_features))
            if layer != last:
                h = torch.relu(h)
            levels.append(h)
        return levels
