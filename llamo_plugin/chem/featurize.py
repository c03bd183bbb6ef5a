"""Stage 1: molecule -> OGB integer features (reference §2; OGB ``ogb.utils.features``).

The vocabularies are data; the embedding sizes derive from them. Unknown values map to the
last index of their column ("misc"), like OGB's ``safe_index``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from llamo_plugin.records import MolGraph, ParsedMolecule

#: OGB ``allowable_features``; the index of a value is its feature id.
ATOM_VOCAB: dict[str, list[Any]] = {
    "atomic_num": [*range(1, 119), "misc"],
    "chirality": [
        "CHI_UNSPECIFIED",
        "CHI_TETRAHEDRAL_CW",
        "CHI_TETRAHEDRAL_CCW",
        "CHI_OTHER",
        "misc",
    ],
    "degree": [*range(11), "misc"],
    "formal_charge": [*range(-5, 6), "misc"],
    "num_hs": [*range(9), "misc"],
    "radical_electrons": [*range(5), "misc"],
    "hybridization": ["SP", "SP2", "SP3", "SP3D", "SP3D2", "misc"],
    "is_aromatic": [False, True],
    "is_in_ring": [False, True],
}
BOND_VOCAB: dict[str, list[Any]] = {
    "bond_type": ["SINGLE", "DOUBLE", "TRIPLE", "AROMATIC", "misc"],
    "stereo": ["STEREONONE", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS", "STEREOANY"],
    "is_conjugated": [False, True],
}

ATOM_VOCAB_SIZES: tuple[int, ...] = tuple(len(v) for v in ATOM_VOCAB.values())
BOND_VOCAB_SIZES: tuple[int, ...] = tuple(len(v) for v in BOND_VOCAB.values())

_ATOM_INDEX = [{v: i for i, v in enumerate(vals)} for vals in ATOM_VOCAB.values()]
_BOND_INDEX = [{v: i for i, v in enumerate(vals)} for vals in BOND_VOCAB.values()]


def _safe_index(table: dict[Any, int], value: Any) -> int:
    """Index of ``value``; unknown values go to the last slot (OGB's "misc")."""
    return table.get(value, len(table) - 1)


def atom_features(atom: Any) -> list[int]:
    """The 9 OGB integer features of an RDKit atom."""
    values = (
        atom.GetAtomicNum(),
        str(atom.GetChiralTag()),
        atom.GetTotalDegree(),
        atom.GetFormalCharge(),
        atom.GetTotalNumHs(),
        atom.GetNumRadicalElectrons(),
        str(atom.GetHybridization()),
        atom.GetIsAromatic(),
        atom.IsInRing(),
    )
    return [_safe_index(t, v) for t, v in zip(_ATOM_INDEX, values, strict=True)]


def bond_features(bond: Any) -> list[int]:
    """The 3 OGB integer features of an RDKit bond."""
    values = (str(bond.GetBondType()), str(bond.GetStereo()), bond.GetIsConjugated())
    return [_safe_index(t, v) for t, v in zip(_BOND_INDEX, values, strict=True)]


def mol_to_graph(mol: Any, motifs: np.ndarray | None = None) -> MolGraph:
    """RDKit ``Mol`` -> :class:`MolGraph` (both edge directions, hydrogens implicit).

    A molecule without bonds gets ``edge_index`` of shape ``[2, 0]`` and ``bond_features``
    of shape ``[0, 3]``.
    """
    x = np.asarray([atom_features(a) for a in mol.GetAtoms()], dtype=np.int64).reshape(-1, 9)
    src: list[int] = []
    dst: list[int] = []
    feats: list[list[int]] = []
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        f = bond_features(bond)
        src += [i, j]
        dst += [j, i]
        feats += [f, f]
    edge_index = np.asarray([src, dst], dtype=np.int64).reshape(2, -1)
    edge_attr = np.asarray(feats, dtype=np.int64).reshape(-1, 3)
    return MolGraph(x, edge_index, edge_attr, motifs)


def featurize(molecule: ParsedMolecule) -> MolGraph:
    """Featurise a validated molecule the way LLaMo does.

    The atom graph comes from the canonical *isomeric* SMILES (so stereo tags reach the
    chirality/stereo features, as in OGB ``smiles2graph`` on the dataset SMILES, and equal
    molecules always give identical arrays); the motifs come from the canonical non-isomeric
    SMILES, as in the original code.
    """
    from llamo_plugin.chem.motifs import extract_motifs
    from llamo_plugin.chem.smiles import mol_from_smiles

    mol = mol_from_smiles(molecule.isomeric_smiles)
    return mol_to_graph(mol, extract_motifs(molecule.canonical_smiles))
