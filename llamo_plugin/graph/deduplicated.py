"""Stages 2 + 3 for inference: the graph tokenizer over colour-refined atom classes.

:class:`DedupGraphTokenizer` computes exactly what
:class:`~llamo_plugin.graph.module.GraphTokenizer` computes, with the same weights, but

- runs each GIN layer once per atom *class* (:mod:`llamo_plugin.graph.refinement`) instead of
  once per atom, and computes the projector's attention scores per class too; the per-molecule
  softmax and pooling read class rows through one gather into the ``[B, A]`` layout (no
  zero-filled scatter);
- sums each class's incoming messages as a gather over a padded ``[C, D]`` neighbour table
  (a fixed order, so multi-threaded onnxruntime is repeatable; ``index_add`` exported to a
  ``ScatterND(add)`` that races with more than one thread);
- folds every inference-mode BatchNorm into the linear layer before it, the motif
  attention's key/value projections through the motif embedding
  (``MultiLevelProjector.motif_tokens_folded``) and the last GIN layer's second linear into
  the level attention (:meth:`DedupGraphTokenizer.level_tokens`), and applies layer 1's first
  linear before its neighbour sum (:meth:`DedupGraphTokenizer.class_states`).

This is the module exported to ONNX (``llamo_plugin/export/onnx_graph.py``); training and the
reference path use ``GraphTokenizer``. Build it from a model in eval mode: the folded weights are a
snapshot of the running statistics at construction time.
"""

from __future__ import annotations

import torch
from torch import nn

from llamo_plugin.graph.module import GraphTokenizer

#: Fixed input names of :meth:`DedupGraphTokenizer.forward` before the per-layer lists.
DEDUP_INPUT_NAMES = (
    "atom_classes",
    "bond_classes",
    "dense_classes",
    "node_mask",
    "motifs",
    "motif_mask",
)
#: Per-layer inputs, named ``<name>_<k>`` for layer ``k = 1..L`` in the ONNX graph.
DEDUP_LAYER_INPUT_NAMES = ("parents", "message_sources", "message_bonds", "messages")


def _fold_batch_norm(linear: nn.Linear, norm: nn.BatchNorm1d) -> nn.Linear:
    """``norm(linear(x))`` in inference mode as one linear layer."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    weight = linear.weight
    fused = nn.Linear(
        linear.in_features, linear.out_features, device=weight.device, dtype=weight.dtype
    )
    with torch.no_grad():
        fused.weight.copy_(linear.weight * scale[:, None])
        fused.bias.copy_((linear.bias - norm.running_mean) * scale + norm.bias)
    return fused


class DedupGraphTokenizer(nn.Module):
    """GIN over atom classes + the multi-level projector (shared with ``source``).

    Shapes (``C_k`` classes at level k, D padded in-degree, Cb bond classes, N atoms,
    B molecules, A max atoms, M max motifs, L layers):
        atom_classes ``[C_0, 9]`` int64; bond_classes ``[Cb, 3]`` int64;
        dense_classes ``[L+1, B, A]`` int64 (each atom's class per level, 0 at padding);
        node_mask ``[B, A]`` bool; motifs ``[B, M, 73]`` float32; motif_mask ``[B, M]`` bool;
        parents, message_sources, message_bonds: L tensors ``[C_k]``, ``[P_k]``, ``[P_k]``
        int64; messages: L tensors ``[C_k, D]`` int64 (``P_k`` at padding)
        -> graph tokens ``[B, num_graph_tokens, output_size]`` float32
    """

    def __init__(self, source: GraphTokenizer) -> None:
        super().__init__()
        encoder = source.encoder
        self.num_layers = len(encoder.gnns)
        self.atom_encoder = encoder.atom_encoder
        self.bond_encoders = nn.ModuleList(g.bond_encoder for g in encoder.gnns)
        self.first = nn.ModuleList(_fold_batch_norm(g.mlp[0], g.mlp[1]) for g in encoder.gnns)
        self.second = nn.ModuleList(
            _fold_batch_norm(g.mlp[3], norm)
            for g, norm in zip(encoder.gnns, encoder.batch_norms, strict=True)
        )
        self.register_buffer(
            "self_weight", torch.stack([(1 + g.eps.detach()).reshape(()) for g in encoder.gnns])
        )
        self.projector = source.projector

    @property
    def num_graph_tokens(self) -> int:
        return self.projector.config.num_graph_tokens

    def class_states(
        self,
        atom_classes: torch.Tensor,
        bond_classes: torch.Tensor,
        parents: list[torch.Tensor],
        message_sources: list[torch.Tensor],
        message_bonds: list[torch.Tensor],
        messages: list[torch.Tensor],
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """GIN states of every class at levels ``0..L-1`` (``L`` tensors ``[C_k, d]``) and
        the last layer's hidden activations ``relu(first(z))`` ``[C_L, 2d]``.

        Each distinct message ``relu(h_src + bond)`` is computed once (``[P_k, d]``); a zero
        row appended after them serves the padding slots of ``messages``. Two exact
        rearrangements save matmul rows:

        - layer 1's first linear distributes over its input sum,
          ``W z + b = s W h_parent + sum_j W m_j + b``, so it runs on the few atom classes
          ``C_0`` and distinct messages ``P_1`` instead of the ``C_1`` classes;
        - the last layer's second linear is not applied here: its output is only read by
          the projector's attention, which is linear in it (:meth:`level_tokens`).
        """
        h = self.atom_encoder(atom_classes)
        states = [h]
        for k in range(self.num_layers):
            classes, width = messages[k].shape
            bonds = self.bond_encoders[k](bond_classes)  # [Cb, d]
            distinct = torch.relu(
                h.index_select(0, message_sources[k]) + bonds.index_select(0, message_bonds[k])
            )
            own = h
            if k == 0:  # [P_1, 2d] and [C_0, 2d]: the first linear before the gathers
                distinct = torch.matmul(distinct, self.first[0].weight.t())
                own = torch.matmul(h, self.first[0].weight.t())
            distinct = torch.cat([distinct, torch.zeros_like(own[:1])])  # [P_k + 1, *]
            incoming = distinct.index_select(0, messages[k].reshape(-1))
            aggregated = incoming.view(classes, width, -1).sum(dim=1)  # [C_k, *]
            z = self.self_weight[k] * own.index_select(0, parents[k]) + aggregated
            hidden = torch.relu((z + self.first[0].bias) if k == 0 else self.first[k](z))
            if k == self.num_layers - 1:
                return states, hidden
            h = torch.relu(self.second[k](hidden))
            states.append(h)
        raise ValueError("the GIN has no layers")

    def level_tokens(
        self,
        states: list[torch.Tensor],
        last_hidden: torch.Tensor,
        dense_classes: torch.Tensor,
        node_mask: torch.Tensor,
    ) -> torch.Tensor:
        """The projector's level tokens ``[B, (L+1)*q, d]`` from class states ``[C_k, d]`` (levels
        ``0..L-1``) and the last layer's hidden activations ``[C_L, 2d]``: the same softmax
        attention as ``MultiLevelProjector.level_tokens_flat``.

        The last level's states are ``h = W2 u + b2`` for the hidden rows ``u``; its attention
        scores ``h . f = u . (W2^T f) + const`` (softmax ignores the constant) and values
        ``W_v (sum_a p_a h_a) + b_v = (W_v W2)(sum_a p_a u_a) + W_v b2 + b_v`` are taken in
        ``u``'s space, so ``W2`` is applied to weights, not to the ``C_L`` class rows.
        """
        batch, atoms = node_mask.shape
        projector = self.projector
        folded = projector.folded_level_queries()  # [L+1, Hq, d]
        w_vh, b_vh = projector.level_value_heads()  # [L+1, H, hd, d], [L+1, H, hd]
        second = self.second[-1]
        rows = [*states, last_hidden]
        queries = [*folded[:-1], torch.matmul(folded[-1], second.weight)]  # [Hq, d or 2d]
        padding = ~node_mask.unsqueeze(-1)  # [B, A, 1]
        pooled = []
        for k, h in enumerate(rows):
            index = dense_classes[k].reshape(-1)
            scores = torch.matmul(h, queries[k].transpose(0, 1))  # [C_k, Hq]
            s_dense = scores.index_select(0, index).view(batch, atoms, -1)
            probs = torch.softmax(s_dense.masked_fill(padding, float("-inf")), dim=1)
            h_dense = h.index_select(0, index).view(batch, atoms, -1)  # [B, A, d or 2d]
            pooled.append(torch.matmul(probs.transpose(1, 2), h_dense))  # [B, Hq, *]
        value_weights = [*w_vh[:-1], torch.matmul(w_vh[-1], second.weight)]  # [H, hd, *]
        value_biases = [*b_vh[:-1], b_vh[-1] + torch.matmul(w_vh[-1], second.bias)]  # [H, hd]
        values = torch.cat(  # per level (no stacked copy of the pooled rows): [L+1, H, B*q, hd]
            [
                projector.level_values(p[None], w[None], b[None])
                for p, w, b in zip(pooled, value_weights, value_biases, strict=True)
            ]
        )
        return projector.level_tokens_from_values(projector.concat_heads(values, batch))

    def forward(
        self,
        atom_classes: torch.Tensor,
        bond_classes: torch.Tensor,
        dense_classes: torch.Tensor,
        node_mask: torch.Tensor,
        motifs: torch.Tensor,
        motif_mask: torch.Tensor,
        parents: list[torch.Tensor],
        message_sources: list[torch.Tensor],
        message_bonds: list[torch.Tensor],
        messages: list[torch.Tensor],
    ) -> torch.Tensor:
        states, last_hidden = self.class_states(
            atom_classes, bond_classes, parents, message_sources, message_bonds, messages
        )
        level = self.level_tokens(states, last_hidden, dense_classes, node_mask)
        motif = self.projector.motif_tokens_folded(motifs, motif_mask)
        return self.projector.tokens_from_parts(level, motif)


def dedup_torch_inputs(named: dict, num_layers: int, device: object = "cpu") -> dict:
    """:func:`~llamo_plugin.graph.refinement.class_batch_inputs` (numpy, flat names) ->
    keyword arguments of :meth:`DedupGraphTokenizer.forward` (torch, per-layer lists)."""
    import numpy as np

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    kwargs: dict = {name: t(named[name]) for name in DEDUP_INPUT_NAMES}
    for name in DEDUP_LAYER_INPUT_NAMES:
        kwargs[name] = [t(named[f"{name}_{k + 1}"]) for k in range(num_layers)]
    return kwargs
