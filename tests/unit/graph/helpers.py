"""Shared helpers for the graph-stage tests: small configs, well-scaled weights, batching."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from llamo_plugin.chem.featurize import featurize
from llamo_plugin.chem.smiles import parse_smiles
from llamo_plugin.config import GraphEncoderConfig, ProjectorConfig
from llamo_plugin.graph.batching import collate_graphs, graph_batch_inputs, to_torch
from llamo_plugin.graph.data import collate_pyg
from llamo_plugin.graph.module import GraphTokenizer
from llamo_plugin.records import MolGraph

HIDDEN = 32
OUTPUT = 32

#: A molecule with more than 100 heavy atoms (a branched ester with a phenyl end group).
BIG_SMILES = "CCOC(=O)" + "CC(C)" * 33 + "c1ccccc1"


def small_configs(**projector: Any) -> tuple[GraphEncoderConfig, ProjectorConfig]:
    graph = GraphEncoderConfig(hidden_size=HIDDEN)
    options: dict[str, Any] = {"input_size": HIDDEN, "output_size": OUTPUT, "mlp_depth": 2}
    options.update(projector)
    return graph, ProjectorConfig(**options)


def rescale_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every weight an O(1) scale (the reference init makes activations tiny).

    Tests that compare tokens at ``atol=1e-5`` would be vacuous with near-zero outputs.
    BatchNorm statistics and ``eps`` get non-trivial values so that eval-mode BatchNorm is
    not the identity.
    """
    gen = torch.Generator().manual_seed(seed)

    def rand(t: torch.Tensor, scale: float) -> torch.Tensor:
        return torch.randn(t.shape, generator=gen) * scale

    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("eps"):
                p.copy_(torch.full_like(p, 0.1))
            elif p.ndim >= 2:
                p.copy_(rand(p, 1.0 / max(p.shape[-1], 1) ** 0.5))
            else:
                p.copy_(rand(p, 0.1))
        for m in module.modules():
            if isinstance(m, nn.Embedding):
                m.weight.copy_(rand(m.weight, 1.0))
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(1.0 + rand(m.weight, 0.1))
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.copy_(rand(m.running_mean, 0.1))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
                m.weight.copy_(1.0 + rand(m.weight, 0.1))
        for name in ("query_tokens", "motif_query_tokens"):
            if hasattr(module, name):
                getattr(module, name).copy_(rand(getattr(module, name), 1.0))
    return module


def make_tokenizer(seed: int = 0, **projector: Any) -> GraphTokenizer:
    graph, proj = small_configs(**projector)
    torch.manual_seed(seed)
    model = GraphTokenizer(graph, proj)
    rescale_(model, seed)
    return model.eval()


def graphs(smiles: Sequence[str]) -> list[MolGraph]:
    return [featurize(parse_smiles(s)) for s in smiles]


def batch_inputs(mols: Sequence[MolGraph]) -> dict[str, torch.Tensor]:
    """The plain-tensor inputs (``GRAPH_INPUT_NAMES``) from the numpy collation."""
    return to_torch(graph_batch_inputs(collate_graphs(mols)))


@torch.no_grad()
def tokens(model: GraphTokenizer, smiles: Sequence[str]) -> torch.Tensor:
    """Graph tokens through the model's PyG path (``collate_pyg`` -> ``forward``)."""
    return model(collate_pyg(graphs(smiles)))
