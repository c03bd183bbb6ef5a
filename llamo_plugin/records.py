"""Typed hand-off records between pipeline stages.

The chemistry stage produces numpy records (no torch), the graph stage collates them into a
:class:`GraphBatch`, and prompt assembly produces :class:`PromptBatch`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

#: Why decoding stopped: the model wrote EOS, or the answer hit ``max_new_tokens``.
StopReason = Literal["eos", "length"]


@dataclass(frozen=True)
class Generation:
    """One decoded answer, the record every LM path returns (model, backends, worker
    processes, answer cache).

    Attributes:
        text: decoded with special tokens skipped, stripped.
        token_ids: generated ids up to and including EOS (if reached); empty when the
            answer came from the answer cache (it stores text and stop reason only).
        stop_reason: ``"eos"`` or ``"length"``.
    """

    text: str
    token_ids: tuple[int, ...]
    stop_reason: StopReason


@dataclass(frozen=True)
class ParsedMolecule:
    """A validated molecule.

    Attributes:
        input_smiles: the SMILES as given.
        canonical_smiles: RDKit canonical, **non-isomeric** SMILES (LLaMo's prompt and motif form).
        isomeric_smiles: RDKit canonical isomeric SMILES (the identity used for de-duplication).
    """

    input_smiles: str
    canonical_smiles: str
    isomeric_smiles: str


@dataclass(frozen=True)
class MolGraph:
    """One molecule as OGB integer features (reference §2).

    Shapes:
        atom_features: ``[N, 9]`` int64
        edge_index: ``[2, E]`` int64, both directions of every bond (row 0 source, row 1 target)
        bond_features: ``[E, 3]`` int64
        motifs: ``[M, 73]`` float32 functional-group vectors, or ``None`` when extraction failed
            (the projector then uses its raw motif queries, as the original code does).
    """

    atom_features: np.ndarray
    edge_index: np.ndarray
    bond_features: np.ndarray
    motifs: np.ndarray | None

    @property
    def num_atoms(self) -> int:
        return int(self.atom_features.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])


@dataclass(frozen=True)
class GraphBatch:
    """A batch of molecules in flat (PyG-style) layout plus padded motif tensors.

    Shapes (B molecules, N atoms in total, E directed edges, M max motifs per molecule):
        atom_features: ``[N, 9]`` int64
        edge_index: ``[2, E]`` int64, indices into the flat atom axis
        bond_features: ``[E, 3]`` int64
        node_graph: ``[N]`` int64, molecule index of each atom (sorted, contiguous)
        node_slot: ``[N]`` int64, position of each atom inside its molecule
        motifs: ``[B, M, 73]`` float32 (zero padded; ``M >= 1``)
        motif_mask: ``[B, M]`` bool, True where a real motif is present
        num_graphs: B
        max_atoms: largest molecule size (for dense per-molecule layouts)

    A molecule whose motif extraction failed has an all-False ``motif_mask`` row.
    """

    atom_features: np.ndarray
    edge_index: np.ndarray
    bond_features: np.ndarray
    node_graph: np.ndarray
    node_slot: np.ndarray
    motifs: np.ndarray
    motif_mask: np.ndarray
    num_graphs: int
    max_atoms: int


@dataclass(frozen=True)
class ClassGraphBatch:
    """The atom classes of a :class:`GraphBatch` after colour refinement, one level per GIN
    layer (:mod:`llamo_plugin.graph.refinement`). Atoms of one class have identical GIN
    states at that level, so the encoder computes each class once.

    Shapes (``C_k`` classes at level k, ``D`` the largest in-degree, at least 1, ``Cb`` bond
    classes, ``P_k`` distinct messages, N atoms, L layers):
        atom_classes: ``[C_0, 9]`` int64, the distinct atom feature rows (level-0 classes)
        bond_classes: ``[Cb, 3]`` int64, the distinct bond feature rows
        parents: L arrays ``[C_k]`` int64, the level-(k-1) class of each level-k class
        message_sources: L arrays ``[P_k]`` int64, the level-(k-1) neighbour class of each
            distinct incoming (neighbour class, bond class) pair
        message_bonds: L arrays ``[P_k]`` int64, the bond class of each pair
        messages: L arrays ``[C_k, D]`` int64, the pairs arriving at each class (sorted;
            ``P_k`` at padding)
        node_classes: ``[L + 1, N]`` int64, every atom's class at every level
    """

    atom_classes: np.ndarray
    bond_classes: np.ndarray
    parents: tuple[np.ndarray, ...]
    message_sources: tuple[np.ndarray, ...]
    message_bonds: tuple[np.ndarray, ...]
    messages: tuple[np.ndarray, ...]
    node_classes: np.ndarray
