"""Tests for llamo_plugin.chem.smiles: validation, canonical forms, prompt cut."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llamo_plugin.chem.smiles import (
    PROMPT_SMILES_MAX_CHARS,
    canonical_smiles,
    mol_from_smiles,
    parse_smiles,
    prompt_smiles,
)
from llamo_plugin.errors import InvalidSmilesError, LlamoError
from llamo_plugin.records import ParsedMolecule


@pytest.mark.parametrize("value", [None, float("nan"), math.nan, np.float64("nan")])
def test_missing(value: object) -> None:
    with pytest.raises(InvalidSmilesError) as info:
        parse_smiles(value)
    assert info.value.reason == "missing"
    assert info.value.smiles is None


@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_empty(value: str) -> None:
    with pytest.raises(InvalidSmilesError) as info:
        parse_smiles(value)
    assert info.value.reason == "empty"


@pytest.mark.parametrize("value", ["C1CC", "xyz", "C(C", "c1cccc1", "CC)"])
def test_unparseable_string(value: str) -> None:
    with pytest.raises(InvalidSmilesError) as info:
        parse_smiles(value)
    assert info.value.reason == "unparseable"
    assert info.value.smiles == value
    assert value in str(info.value)


@pytest.mark.parametrize("value", [42, 3.5, b"CCO", ["CCO"]])
def test_non_string_is_unparseable(value: object) -> None:
    with pytest.raises(InvalidSmilesError) as info:
        parse_smiles(value)
    assert info.value.reason == "unparseable"


def test_error_is_value_error_and_llamo_error() -> None:
    with pytest.raises(ValueError) as info:
        mol_from_smiles("xyz")
    assert isinstance(info.value, LlamoError)


def test_mol_from_smiles_returns_rdkit_mol() -> None:
    mol = mol_from_smiles("  CCO ")
    assert mol.GetNumAtoms() == 3
    assert [a.GetSymbol() for a in mol.GetAtoms()] == ["C", "C", "O"]


def test_canonical_is_non_isomeric() -> None:
    parsed = parse_smiles("C[C@H](N)C(=O)O")
    assert isinstance(parsed, ParsedMolecule)
    assert parsed.canonical_smiles == "CC(N)C(=O)O"
    assert "@" not in parsed.canonical_smiles
    assert parsed.isomeric_smiles == "C[C@H](N)C(=O)O"
    assert parsed.input_smiles == "C[C@H](N)C(=O)O"


def test_isomeric_keeps_double_bond_stereo() -> None:
    parsed = parse_smiles("C/C=C/C")
    assert parsed.canonical_smiles == "CC=CC"
    assert "/" in parsed.isomeric_smiles


def test_canonicalisation_of_reordered_input() -> None:
    # The reference's own doctest: aspirin written differently.
    parsed = parse_smiles("OC(=O)c1ccccc1OC(C)=O")
    assert parsed.canonical_smiles == "CC(=O)Oc1ccccc1C(=O)O"
    assert parse_smiles("CC(=O)Oc1ccccc1C(=O)O").canonical_smiles == parsed.canonical_smiles


def test_input_is_stripped() -> None:
    parsed = parse_smiles("  CCO\n")
    assert parsed.input_smiles == "CCO"
    assert parsed.canonical_smiles == "CCO"


def test_canonical_smiles_function_isomeric_flag() -> None:
    mol = mol_from_smiles("N[C@@H](C)C(=O)O")
    assert canonical_smiles(mol) == "CC(N)C(=O)O"
    assert "@" in canonical_smiles(mol, isomeric=True)


def test_disconnected_fragments_are_kept() -> None:
    assert parse_smiles("[Na+].[Cl-]").canonical_smiles == "[Cl-].[Na+]"


def test_prompt_smiles_cut_at_128() -> None:
    long_chain = "O" + "C" * 150 + "N"  # an amino alcohol with a 150-carbon chain
    parsed = parse_smiles(long_chain)
    assert len(parsed.canonical_smiles) == 152
    text = prompt_smiles(parsed)
    assert PROMPT_SMILES_MAX_CHARS == 128
    assert len(text) == 128
    assert text == parsed.canonical_smiles[:128]


def test_prompt_smiles_short_and_custom_cut() -> None:
    parsed = parse_smiles("C[C@H](N)C(=O)O")
    assert prompt_smiles(parsed) == "CC(N)C(=O)O"
    assert prompt_smiles(parsed, max_chars=4) == "CC(N"


@pytest.mark.parametrize("text", ["C C", "CCO ethanol", "CCO\tfoo"])
def test_inner_whitespace_is_refused(text: str) -> None:
    """RDKit reads text after a space as a name; a table cell like that is an error, which
    says where the whitespace is."""
    with pytest.raises(InvalidSmilesError) as info:
        parse_smiles(text)
    assert info.value.reason == "bad_character" and "whitespace at position" in str(info.value)


def test_numpy_and_pandas_missing_values() -> None:
    import numpy as np

    for value in (np.float32("nan"), np.float64("nan")):
        with pytest.raises(InvalidSmilesError) as info:
            parse_smiles(value)
        assert info.value.reason == "missing"
