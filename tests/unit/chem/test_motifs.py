"""Tests for llamo_plugin.chem.motifs: the 73-dim functional-group vectors (reference §4)."""

from __future__ import annotations

import numpy as np
import pytest

from llamo_plugin.chem.motifs import (
    MOTIF_FEATURE_SIZE,
    MotifExtractionError,
    _check_supported,
    extract_motifs,
    functional_groups,
    group_vector,
)
from llamo_plugin.chem.smiles import mol_from_smiles, parse_smiles

# (offset, bins) of the one-hot blocks, from the table in reference §4.
ONE_HOT_BLOCKS = {
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


def _motifs(smiles: str) -> np.ndarray | None:
    """Motifs computed the way LLaMo does: on the canonical non-isomeric SMILES."""
    return extract_motifs(parse_smiles(smiles).canonical_smiles)


def _nonzero(row: np.ndarray) -> list[int]:
    return np.flatnonzero(row).tolist()


# Reference §4, "Test vectors": (input, M, non-zero dims of FG row 0).
REFERENCE_VECTORS = [
    ("CC(=O)Oc1ccccc1C(=O)O", 3, [3, 13, 17, 23, 29, 40, 49, 56, 64]),
    ("CCO", 2, [1, 12, 17, 23, 29, 38, 48, 56, 64]),
    ("O", 1, [0, 12, 17, 23, 29, 37, 48, 56, 64]),
    ("c1ccccc1", 1, [6, 11, 17, 23, 29, 37, 48, 56, 70, 72]),
    ("C1CCC2CCCCC2C1", 2, [6, 11, 17, 23, 29, 43, 48, 56, 64, 72]),
    ("CC(C)Cc1ccc(C(C)C(=O)O)cc1", 8, [2, 13, 17, 23, 29, 39, 49, 56, 64]),
    ("[Na+].[Cl-]", 2, [0, 11, 17, 23, 29, 35, 37, 48, 56, 64]),
    ("c1ccc2c(c1)ccc1ccccc12", 3, [6, 11, 17, 23, 29, 37, 48, 56, 70, 72]),
]


@pytest.mark.parametrize(("smiles", "num_groups", "row0"), REFERENCE_VECTORS)
def test_reference_vectors(smiles: str, num_groups: int, row0: list[int]) -> None:
    z = _motifs(smiles)
    assert z is not None
    assert z.shape == (num_groups, MOTIF_FEATURE_SIZE)
    assert _nonzero(z[0]) == row0
    assert set(np.unique(z).tolist()) <= {0.0, 1.0}


def test_methane_fails() -> None:
    assert _motifs("C") is None
    assert extract_motifs("C") is None


def _is_valid_block_layout(z: np.ndarray) -> bool:
    for offset, bins in ONE_HOT_BLOCKS.values():
        if not (z[:, offset : offset + bins].sum(axis=1) == 1).all():
            return False
    return True


@pytest.mark.parametrize(
    "smiles",
    [s for s, _, _ in REFERENCE_VECTORS] + ["OOOOOOOO", "C=CC=CC=CC=CC=CC=CC=CC=CC=C", "[He]"],
)
def test_float32_and_one_hot_blocks(smiles: str) -> None:
    z = _motifs(smiles)
    assert z is not None
    assert z.dtype == np.float32
    assert z.ndim == 2
    assert z.shape[1] == 73
    assert _is_valid_block_layout(z)
    assert set(np.unique(z[:, [35, 36, 72]]).tolist()) <= {0.0, 1.0}


# Hand-derived vectors (algorithm of reference §4), one row per expected FG, in order.
HAND_VECTORS = [
    # all atoms heteroatoms -> one chain FG {P, 4 O}: 3 single + 1 double bond
    ("OP(=O)(O)O", [[0, 15, 17, 24, 29, 40, 49, 56, 64]]),
    # S=O merged, both methyls are environment: {C, C, S, O}
    ("CS(C)=O", [[2, 12, 17, 23, 30, 39, 49, 56, 64]]),
    # C#N marked (triple), methyl is environment
    ("CC#N", [[2, 11, 18, 23, 29, 38, 48, 57, 64]]),
    # acetal carbon is marked, so O-C-O and all four carbons form one FG
    ("COC(C)OC", [[4, 13, 17, 23, 29, 42, 48, 56, 64]]),
    # phenol: chain FG {O, ring C} first, then the aromatic ring
    ("Oc1ccccc1", [[1, 12, 17, 23, 29, 38, 48, 56, 64], [6, 11, 17, 23, 29, 37, 48, 56, 70, 72]]),
    # pyridine: the single marked ring N is dropped as a chain FG; only the ring remains
    ("c1ccncc1", [[5, 11, 18, 23, 29, 37, 48, 56, 70, 72]]),
    # norbornane: the two SSSR rings share 3 atoms and merge into one 7-atom FG
    ("C1CC2CCC1C2", [[7, 11, 17, 23, 29, 45, 48, 56, 64, 72]]),
    # a lone He: one FG, counted as UNK
    ("[He]", [[0, 11, 17, 23, 29, 36, 37, 48, 56, 64]]),
]


@pytest.mark.parametrize(("smiles", "rows"), HAND_VECTORS)
def test_hand_vectors(smiles: str, rows: list[list[int]]) -> None:
    z = _motifs(smiles)
    assert z is not None
    assert [_nonzero(r) for r in z] == rows


def test_fused_rings_stay_separate() -> None:
    z = _motifs("C1CCC2CCCCC2C1")  # decalin: share exactly 2 atoms
    assert z is not None
    assert z.shape[0] == 2
    assert (z[:, 72] == 1).all()
    assert (z[:, 6] == 1).all()  # 6 carbons each


def test_halogen_dim_35() -> None:
    z = _motifs("CCF")
    assert z is not None
    assert z[:, 35].tolist() == [1.0, 0.0]  # {F, C} then the C-C bond
    assert (z[:, 36] == 0).all()
    cf4 = _motifs("FC(F)(F)F")
    assert cf4 is not None
    assert cf4.shape[0] == 4
    assert (cf4[:, 35] == 1).all()
    assert (cf4[:, 1] == 1).all()  # one carbon in each {F, C}


@pytest.mark.parametrize("smiles", ["[Na]", "[Na+]", "[Si](C)(C)(C)C", "CB(C)C"])
def test_unknown_element_dim_36(smiles: str) -> None:
    z = _motifs(smiles)
    assert z is not None
    assert z[:, 36].max() == 1.0
    assert (z[:, 35] == 0).all()


def test_clamp_to_last_bin() -> None:
    # 18 carbons, 8 single and 9 double bonds, all in one conjugated chain FG
    z = _motifs("C=CC=CC=CC=CC=CC=CC=CC=CC=C")
    assert z is not None
    assert z.shape[0] == 1
    assert _nonzero(z[0]) == [10, 11, 17, 23, 29, 45, 55, 56, 64]
    assert z[0, 10] == 1  # #C 18 -> "10+"
    assert z[0, 55] == 1  # #DOUBLE 9 -> last bin (7)
    # 9 triple bonds -> last TRIPLE bin
    zt = _motifs("C#CC#CC#CC#CC#CC#CC#CC#CC#C")
    assert zt is not None
    assert zt[0, 63] == 1
    # 8 oxygens, 7 single bonds in one chain FG -> last #O bin
    zo = _motifs("OOOOOOOO")
    assert zo is not None
    assert _nonzero(zo[0]) == [0, 16, 17, 23, 29, 44, 48, 56, 64]
    # 12 single bonds inside one FG -> last SINGLE bin (47)
    zs = _motifs("OOOOOOOOOOOOO")
    assert zs is not None
    assert zs[0, 47] == 1


def test_atoms_may_belong_to_several_groups() -> None:
    mol = mol_from_smiles("Oc1ccccc1")
    groups = functional_groups(mol)
    assert len(groups) == 2
    assert groups[0] & groups[1]  # the ipso carbon is environment of O and part of the ring


def test_group_vector_counts_bonds_inside_group_only() -> None:
    mol = mol_from_smiles("CCO")
    v = group_vector(mol, {2})  # the O alone: no bond inside
    assert _nonzero(v) == [0, 12, 17, 23, 29, 37, 48, 56, 64]
    assert v.dtype == np.float32
    v = group_vector(mol, {0, 1, 2})
    assert _nonzero(v) == [2, 12, 17, 23, 29, 39, 48, 56, 64]


# Documented failure cases (reference §4): None, never an exception.
FAILURES = [
    "C",  # no functional group at all
    "",  # empty
    "xyz",  # invalid
    "C1CC",  # unclosed ring
    "[NH3]->[Cu+2]",  # DATIVE bond
    "N->[Cu]",
    "CC(=O)O.N->[Pt]",  # a dative bond anywhere in the molecule
    "[U](F)(F)(F)(F)(F)(F)(F)(F)(F)(F)F",  # degree 11
    "C[U](C)(C)(C)(C)(C)(C)(C)(C)(C)C",
]


@pytest.mark.parametrize("smiles", FAILURES)
def test_failures_return_none(smiles: str) -> None:
    assert extract_motifs(smiles) is None


@pytest.mark.parametrize("smiles", ["[NH3]->[Cu+2]", "[U](F)(F)(F)(F)(F)(F)(F)(F)(F)(F)F"])
def test_failures_via_canonical_form(smiles: str) -> None:
    assert _motifs(smiles) is None


def test_degree_ten_is_still_supported() -> None:
    z = extract_motifs("C[U](C)(C)(C)(C)(C)(C)(C)(C)C")  # U with exactly 10 neighbours
    assert z is not None
    assert z.shape == (1, 73)
    assert z[0, 36] == 1
    assert z[0, 10] == 1  # 10 carbons
    assert z[0, 47] == 1  # 10 single bonds -> bin "10"


def test_extract_motifs_of_none_returns_none() -> None:
    assert extract_motifs(None) is None  # type: ignore[arg-type]


def test_check_supported_lower_level() -> None:
    from rdkit import Chem

    with pytest.raises(MotifExtractionError, match="degree"):
        _check_supported(Chem.MolFromSmiles("C[U](C)(C)(C)(C)(C)(C)(C)(C)(C)C"))
    with pytest.raises(MotifExtractionError, match="DATIVE"):
        _check_supported(Chem.MolFromSmiles("[NH3]->[Cu+2]"))
    # a carbon with 11 explicit neighbours, built without sanitisation
    rw = Chem.RWMol()
    centre = rw.AddAtom(Chem.Atom(6))
    for _ in range(11):
        rw.AddBond(centre, rw.AddAtom(Chem.Atom(9)), Chem.BondType.SINGLE)
    with pytest.raises(MotifExtractionError):
        _check_supported(rw.GetMol())
    _check_supported(Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O"))  # no error


@pytest.mark.parametrize("value", [5, None, b"CCO"])
def test_non_string_input_returns_none(value) -> None:
    assert extract_motifs(value) is None
