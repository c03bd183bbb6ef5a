"""Tests for llamo_plugin.chem.featurize: OGB integer features (reference §2)."""

from __future__ import annotations

import numpy as np
import pytest

from llamo_plugin.chem.featurize import (
    ATOM_VOCAB,
    ATOM_VOCAB_SIZES,
    BOND_VOCAB,
    BOND_VOCAB_SIZES,
    atom_features,
    bond_features,
    featurize,
    mol_to_graph,
)
from llamo_plugin.chem.smiles import mol_from_smiles, parse_smiles
from llamo_plugin.config import OGB_ATOM_VOCAB, OGB_BOND_VOCAB


def _graph(smiles: str):
    return mol_to_graph(mol_from_smiles(smiles))


def test_vocab_sizes_match_ogb() -> None:
    assert ATOM_VOCAB_SIZES == (119, 5, 12, 12, 10, 6, 6, 2, 2)
    assert BOND_VOCAB_SIZES == (5, 6, 2)
    assert ATOM_VOCAB_SIZES == OGB_ATOM_VOCAB
    assert BOND_VOCAB_SIZES == OGB_BOND_VOCAB


def test_vocab_order() -> None:
    assert ATOM_VOCAB["atomic_num"][0] == 1
    assert ATOM_VOCAB["atomic_num"][117] == 118
    assert ATOM_VOCAB["formal_charge"][0] == -5
    assert ATOM_VOCAB["formal_charge"][10] == 5
    assert ATOM_VOCAB["hybridization"][:5] == ["SP", "SP2", "SP3", "SP3D", "SP3D2"]
    assert BOND_VOCAB["bond_type"][:4] == ["SINGLE", "DOUBLE", "TRIPLE", "AROMATIC"]
    assert BOND_VOCAB["stereo"] == [
        "STEREONONE", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS", "STEREOANY"
    ]  # fmt: skip


def test_ethanol_rows_by_hand() -> None:
    g = _graph("CCO")
    # columns: Z-1, chirality, total degree, charge+5, total Hs, radicals, hybrid, arom, ring
    assert g.atom_features.tolist() == [
        [5, 0, 4, 5, 3, 0, 2, 0, 0],  # CH3: C (6 -> 5), degree 1 heavy + 3 H, SP3
        [5, 0, 4, 5, 2, 0, 2, 0, 0],  # CH2
        [7, 0, 2, 5, 1, 0, 2, 0, 0],  # OH: O (8 -> 7), degree 1 heavy + 1 H
    ]
    assert g.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]
    assert g.bond_features.tolist() == [[0, 0, 0]] * 4


def test_benzene_rows_by_hand() -> None:
    g = _graph("c1ccccc1")
    assert g.atom_features.tolist() == [[5, 0, 3, 5, 1, 0, 1, 1, 1]] * 6  # SP2, aromatic, ring
    assert g.bond_features.tolist() == [[3, 0, 1]] * 12  # AROMATIC, no stereo, conjugated


def test_charges_and_hybridisation() -> None:
    g = _graph("C[N+](C)(C)C")
    n = g.atom_features[1]
    assert n[0] == 6  # N
    assert n[3] == 6  # +1 -> index 6
    assert n[2] == 4  # four heavy neighbours, no H
    assert n[4] == 0
    acid = _graph("CC(=O)[O-]").atom_features
    assert acid[3][3] == 4  # -1 -> index 4
    assert acid[2][6] == 1  # carbonyl O is SP2
    nitrile = _graph("CC#N").atom_features
    assert nitrile[1][6] == 0  # SP
    assert _graph("CC#N").bond_features[2].tolist() == [2, 0, 0]  # TRIPLE


def test_radical_electrons() -> None:
    assert _graph("[CH3]").atom_features[0][5] == 1
    assert _graph("[C]").atom_features[0][5] == 4


@pytest.mark.parametrize(("smiles", "tag"), [("C[C@H](N)C(=O)O", 2), ("C[C@@H](N)C(=O)O", 1)])
def test_chirality_tag(smiles: str, tag: int) -> None:
    x = _graph(smiles).atom_features
    assert x[1][1] == tag  # @ = CHI_TETRAHEDRAL_CCW (2), @@ = CW (1)
    assert (np.delete(x[:, 1], 1) == 0).all()


def test_featurize_keeps_stereo_but_canonical_input_does_not() -> None:
    chiral = featurize(parse_smiles("C[C@H](N)C(=O)O")).atom_features
    assert set(chiral[:, 1].tolist()) - {0}  # some atom carries CW/CCW
    assert set(chiral[:, 1].tolist()) <= {0, 1, 2}
    flat = featurize(parse_smiles("CC(N)C(=O)O")).atom_features
    assert (flat[:, 1] == 0).all()
    assert (np.delete(chiral, 1, axis=1) == np.delete(flat, 1, axis=1)).all()


@pytest.mark.parametrize(("smiles", "stereo"), [("C/C=C/C", 2), ("C/C=C\\C", 1), ("CC=CC", 0)])
def test_double_bond_stereo(smiles: str, stereo: int) -> None:
    g = _graph(smiles)
    double = [row for row in g.bond_features.tolist() if row[0] == 1]
    assert double == [[1, stereo, 0], [1, stereo, 0]]  # DOUBLE, E=2 / Z=1, not conjugated


def test_featurize_bond_stereo_from_isomeric_form() -> None:
    g = featurize(parse_smiles("C/C=C/C"))
    assert sorted(g.bond_features[:, 1].tolist()) == [0, 0, 0, 0, 2, 2]


def test_unknown_values_map_to_last_index() -> None:
    dummy = _graph("*C").atom_features[0]
    assert dummy[0] == 118  # atomic number 0 -> misc
    assert dummy[6] == 5  # UNSPECIFIED hybridisation -> misc
    assert _graph("[Na+]").atom_features[0][6] == 5  # S hybridisation -> misc
    assert _graph("[U+6]").atom_features[0][3] == 11  # charge +6 -> misc
    big = _graph("C[U](C)(C)(C)(C)(C)(C)(C)(C)(C)C").atom_features
    assert big[1][2] == 11  # total degree 11 -> misc
    dative = _graph("[NH3]->[Cu+2]")
    assert dative.bond_features[:, 0].tolist() == [4, 4]  # DATIVE -> misc


def test_atom_and_bond_feature_functions() -> None:
    mol = mol_from_smiles("C=O")
    assert atom_features(mol.GetAtomWithIdx(1)) == [7, 0, 1, 5, 0, 0, 1, 0, 0]
    assert bond_features(mol.GetBondWithIdx(0)) == [1, 0, 0]


def test_both_edge_directions_with_matching_features() -> None:
    mol = mol_from_smiles("C=CC#N.c1ccoc1")
    g = mol_to_graph(mol)
    assert g.num_edges == 2 * mol.GetNumBonds()
    src, dst = g.edge_index.tolist()
    pairs = {(s, d): tuple(f) for s, d, f in zip(src, dst, g.bond_features.tolist(), strict=True)}
    assert len(pairs) == g.num_edges
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        assert pairs[(i, j)] == pairs[(j, i)]
    assert pairs[(0, 1)][0] == 1  # C=C
    assert pairs[(3, 2)][0] == 2  # C#N
    ring_types = {pairs[(i, j)][0] for (i, j) in pairs if i >= 4 and j >= 4}
    assert ring_types == {3}  # furan bonds are aromatic


@pytest.mark.parametrize(("smiles", "atoms"), [("[Na+].[Cl-]", 2), ("C", 1), ("[He]", 1)])
def test_no_bonds(smiles: str, atoms: int) -> None:
    g = _graph(smiles)
    assert g.atom_features.shape == (atoms, 9)
    assert g.edge_index.shape == (2, 0)
    assert g.bond_features.shape == (0, 3)
    assert g.edge_index.dtype == np.int64
    assert g.bond_features.dtype == np.int64
    assert g.num_edges == 0


@pytest.mark.parametrize("smiles", ["CCO", "C", "[Na+].[Cl-]", "c1ccccc1O"])
def test_dtypes_and_shapes(smiles: str) -> None:
    g = featurize(parse_smiles(smiles))
    assert g.atom_features.dtype == np.int64
    assert g.edge_index.dtype == np.int64
    assert g.bond_features.dtype == np.int64
    assert g.atom_features.shape[1] == 9
    assert g.bond_features.shape == (g.edge_index.shape[1], 3)
    sizes = np.asarray(ATOM_VOCAB_SIZES)
    assert ((g.atom_features >= 0) & (g.atom_features < sizes)).all()
    if g.num_edges:
        assert ((g.bond_features >= 0) & (g.bond_features < np.asarray(BOND_VOCAB_SIZES))).all()
        assert g.edge_index.max() < g.num_atoms


def test_featurize_attaches_motifs_from_canonical_form() -> None:
    g = featurize(parse_smiles("OCC"))
    assert g.motifs is not None
    assert g.motifs.shape == (2, 73)
    assert g.motifs.dtype == np.float32
    assert featurize(parse_smiles("C")).motifs is None
