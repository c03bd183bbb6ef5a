"""Stage 1: functional-group (motif) vectors for LLaMo's motif branch (reference §4).

A re-implementation, from the specification, of the ReLMole-style extraction in LLaMo's
``llamo/chem.py``: functional groups are chains of marked atoms (heteroatoms, atoms in
double/triple bonds, acetal-like carbons) with their unmarked neighbours, plain C–C single
bonds, and (bridge-merged) rings. Each group becomes a 73-dim count/one-hot vector.

Failure contract: :func:`extract_motifs` returns ``None`` (never raises) in exactly the cases
where the original code fell back to the raw motif queries: no functional group at all
(methane), an unparseable SMILES, a bond type other than single/double/triple/aromatic, or
an atom with more than 10 neighbours.

>>> extract_motifs("CCO").shape
(2, 73)
>>> extract_motifs("C") is None
True
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

MOTIF_FEATURE_SIZE = 73

_MARK_SMARTS = ("[!#6]", "*=,#*", "[CX4]([O,N,S])[O,N,S]")
_HALOGENS = {9, 17, 35, 53}
_ELEMENT_FIELDS = {6: "C", 8: "O", 7: "N", 15: "P", 16: "S"}
_BOND_FIELDS = {"SINGLE": 0, "DOUBLE": 1, "TRIPLE": 2, "AROMATIC": 3}
_MAX_DEGREE = 10

# (offset, number of bins) of every one-hot field, in vector order.
_ONE_HOT = {
    "C": (0, 11),
    "O": (11, 6),
    "N": (17, 6),
    "P": (23, 6),
    "S": (29, 6),
    "SINGLE": (37, 11),
    "DOUBLE": (48, 8),
    "TRIPLE": (56, 8),
    "AROMATIC": (64, 8),
}
_HALOGEN_DIM = 35
_UNK_DIM = 36
_RING_DIM = 72

_patterns: list[Any] | None = None


class MotifExtractionError(Exception):
    """Internal: a molecule the original extractor could not handle (-> ``None``)."""


def _mark_patterns() -> list[Any]:
    global _patterns
    if _patterns is None:
        from rdkit import Chem

        _patterns = [Chem.MolFromSmarts(s) for s in _MARK_SMARTS]
    return _patterns


def _merged_rings(mol: Any) -> list[set[int]]:
    """SSSR rings; rings sharing more than two atoms (bridged/caged) are merged."""
    from rdkit import Chem

    rings = [set(r) for r in Chem.GetSymmSSSR(mol)]
    changed = True
    while changed:
        changed = False
        for i in range(len(rings)):
            if not rings[i]:
                continue
            for j in range(i + 1, len(rings)):
                if len(rings[i] & rings[j]) > 2:
                    rings[i] |= rings[j]
                    rings[j] = set()
                    changed = True
    return [r for r in rings if r]


def _check_supported(mol: Any) -> None:
    """The original computes strict one-hot atom/bond features for every atom and bond."""
    for atom in mol.GetAtoms():
        if atom.GetDegree() > _MAX_DEGREE:
            raise MotifExtractionError(f"atom degree {atom.GetDegree()} > {_MAX_DEGREE}")
    for bond in mol.GetBonds():
        if str(bond.GetBondType()) not in _BOND_FIELDS:
            raise MotifExtractionError(f"unsupported bond type {bond.GetBondType()}")


def functional_groups(mol: Any) -> list[set[int]]:
    """Atom-index sets of the functional groups: chain groups first, then merged rings."""
    marked: set[int] = set()
    for pattern in _mark_patterns():
        for match in mol.GetSubstructMatches(pattern):
            marked.update(match)

    groups: list[set[int]] = []
    group_of: dict[int, int] = {}  # marked atom -> index of the group that holds it now
    for atom_idx in sorted(marked):
        group_of[atom_idx] = len(groups)
        groups.append({atom_idx})

    for bond in mol.GetBonds():
        if bond.IsInRing():
            continue
        a1, a2 = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        if a1 in marked and a2 in marked:
            g1, g2 = group_of[a1], group_of[a2]
            if g1 != g2:  # merge a2's group into a1's
                groups[g1] |= groups[g2]
                for atom_idx, g in group_of.items():
                    if g == g2:
                        group_of[atom_idx] = g1
                groups[g2] = set()
        elif a1 in marked:
            groups[group_of[a1]].add(a2)  # a2 is environment of a1's group
        elif a2 in marked:
            groups[group_of[a2]].add(a1)
        else:
            groups.append({a1, a2})  # a plain C–C single bond

    chain = [
        g
        for g in groups
        if g and not (len(g) == 1 and mol.GetAtomWithIdx(next(iter(g))).IsInRing())
    ]
    return chain + _merged_rings(mol)


def _one_hot(vec: np.ndarray, field: str, count: int) -> None:
    offset, bins = _ONE_HOT[field]
    vec[offset + min(count, bins - 1)] = 1.0


def _mol_tables(mol: Any) -> tuple[list[int], list[tuple[int, int, int, bool]]]:
    """Atomic numbers and ``(begin, end, bond field, in ring)`` of every bond, read from
    RDKit once per molecule (RDKit's Python iterators are the slow part of the extraction)."""
    atomic = [a.GetAtomicNum() for a in mol.GetAtoms()]
    bonds = [
        (
            b.GetBeginAtomIdx(),
            b.GetEndAtomIdx(),
            _BOND_FIELDS[str(b.GetBondType())],
            b.IsInRing(),
        )
        for b in mol.GetBonds()
    ]
    return atomic, bonds


def group_vector(
    mol: Any,
    group: set[int],
    tables: tuple[list[int], list[tuple[int, int, int, bool]]] | None = None,
) -> np.ndarray:
    """The 73-dim vector of one functional group (layout in reference §4); ``tables``:
    :func:`_mol_tables` of ``mol``, when the caller has them already."""
    atomic, bonds = tables if tables is not None else _mol_tables(mol)
    counts = {"C": 0, "O": 0, "N": 0, "P": 0, "S": 0}
    halogen = unknown = False
    for atom_idx in group:
        z = atomic[atom_idx]
        if z in _ELEMENT_FIELDS:
            counts[_ELEMENT_FIELDS[z]] += 1
        elif z in _HALOGENS:
            halogen = True
        else:
            unknown = True
    bond_counts = [0, 0, 0, 0]
    in_ring = False
    for begin, end, field, ring in bonds:
        if begin in group and end in group:
            bond_counts[field] += 1
            in_ring = in_ring or ring
    vec = np.zeros(MOTIF_FEATURE_SIZE, dtype=np.float32)
    for field_name, count in counts.items():
        _one_hot(vec, field_name, count)
    vec[_HALOGEN_DIM] = float(halogen)
    vec[_UNK_DIM] = float(unknown)
    for field_name, count in zip(
        ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC"), bond_counts, strict=True
    ):
        _one_hot(vec, field_name, count)
    vec[_RING_DIM] = float(in_ring)
    return vec


def extract_motifs(canonical_smiles: str) -> np.ndarray | None:
    """Functional-group vectors ``[M, 73]`` (float32) for a canonical non-isomeric SMILES.

    Returns ``None`` for the documented failure cases (see module docstring).
    """
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    if not isinstance(canonical_smiles, str) or not canonical_smiles:
        return None
    mol = Chem.MolFromSmiles(canonical_smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    try:
        _check_supported(mol)
        groups = functional_groups(mol)
    except MotifExtractionError as exc:
        logger.debug("motif extraction fell back for %s: %s", canonical_smiles, exc)
        return None
    if not groups:
        return None
    tables = _mol_tables(mol)
    return np.stack([group_vector(mol, g, tables) for g in groups])
