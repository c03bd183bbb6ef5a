"""Input guards before RDKit: no input can crash or stall the process, every refusal is
typed, and no real molecule is refused.

The fuzz tests run in-process on purpose: a segmentation fault (what ``'C' * 100000`` did in
RDKit's canonicalisation) kills the test run and so cannot pass unnoticed.
"""

from __future__ import annotations

import csv
from importlib import resources

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llamo_plugin.chem.domain import domain_status
from llamo_plugin.chem.featurize import featurize
from llamo_plugin.chem.smiles import (
    DEFAULT_LIMITS,
    SMILES_ALPHABET,
    SmilesLimits,
    check_smiles_text,
    parse_smiles,
)
from llamo_plugin.config import DomainConfig
from llamo_plugin.errors import ConfigError, InvalidSmilesError

HOSTILE = {
    "C" * 100_000: "too_large",  # segfaulted RDKit (stack overflow), exit 139
    "C" * 40_000: "too_large",  # took 19.5 s to parse
    "C" * 1_001: "too_large",  # under the length cap, over the atom cap
    "[Na+]" * 1_001: "too_large",
    "CCö": "bad_character",  # RDKit stopped at the ö and read ethane
    "CC\u00e9O": "bad_character",
    "C\x00C": "bad_character",
    "C\u200bC": "bad_character",  # zero-width space
    "c1ccccc1😀": "bad_character",
    "C C": "bad_character",
    "C\tC": "bad_character",
    "": "empty",
    "   ": "empty",
    "C1CC(": "unparseable",
    "((((((((((": "unparseable",
    "[" * 3_000: "unparseable",
    "%99" * 1_000: "unparseable",
}


@pytest.mark.parametrize(("smiles", "reason"), list(HOSTILE.items()), ids=range(len(HOSTILE)))
def test_hostile_inputs_are_refused_with_a_reason(smiles: str, reason: str) -> None:
    with pytest.raises(InvalidSmilesError) as info:
        parse_smiles(smiles)
    assert info.value.reason == reason
    assert len(str(info.value)) < 300  # the input is quoted briefly


@pytest.mark.parametrize("value", [None, float("nan"), 3, b"CCO", ["CCO"]])
def test_non_text_values(value: object) -> None:
    with pytest.raises(InvalidSmilesError):
        parse_smiles(value)


def test_deep_but_legal_inputs_within_the_caps_parse() -> None:
    for smiles in ("C" * 1_000, "C(" * 499 + "C" + ")" * 499, "C1" + "C" * 997 + "C1"):
        mol = parse_smiles(smiles)
        assert featurize(mol).num_atoms <= DEFAULT_LIMITS.max_atoms


def test_limits_are_configurable() -> None:
    assert parse_smiles("C" * 20, SmilesLimits(max_atoms=20)).canonical_smiles == "C" * 20
    with pytest.raises(InvalidSmilesError, match="21 atoms"):
        parse_smiles("C" * 21, SmilesLimits(max_atoms=20))
    with pytest.raises(InvalidSmilesError, match="characters"):
        parse_smiles("CCO", SmilesLimits(max_chars=2))
    with pytest.raises(ConfigError):
        SmilesLimits(max_atoms=0)
    with pytest.raises(ConfigError, match="unknown"):
        SmilesLimits.from_dict({"max_length": 3})


def test_every_reference_molecule_passes_the_caps() -> None:
    """The bundled ChEBI-20 validation set (the largest real molecules the project ships)
    is never refused by the default caps."""
    ref = resources.files("llamo_plugin") / "resources/reference/chebi20_validation.tsv"
    with ref.open(encoding="utf-8") as fh:
        smiles = [row["smiles"] for row in csv.DictReader(fh, delimiter="\t")]
    assert len(smiles) > 3000
    for s in smiles:
        check_smiles_text(s)  # raises on a refusal


def test_real_molecules_of_the_shared_sets_pass(shared_dir) -> None:  # type: ignore[no-untyped-def]
    """ChEBI-20 (train, validation, test) and the drug-like PubChem set: no refusal."""
    data = shared_dir / "data"
    files = [
        (data / "chebi-20" / "test.txt", "SMILES"),
        (data / "chebi-20-train-smiles" / "chebi20_train_smiles.tsv", "SMILES"),
    ]
    for path, column in files:
        with open(path, encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                check_smiles_text(row[column])


def test_rdkit_nci_molecules_pass() -> None:
    from pathlib import Path

    from rdkit.Chem import RDConfig

    path = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"
    if not path.is_file():
        pytest.skip("RDKit's NCI sample is not installed")
    parsed = 0
    for line in path.read_text().splitlines():
        check_smiles_text(line.split()[0])
        parsed += 1
    assert parsed > 4000


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_any_string_parses_or_is_refused(text: str) -> None:
    try:
        mol = parse_smiles(text)
    except InvalidSmilesError as exc:
        assert exc.reason in {"empty", "unparseable", "bad_character", "too_large", "missing"}
        return
    assert mol.canonical_smiles and set(text.strip()) <= SMILES_ALPHABET


SMILES_CHARS = st.sampled_from([*sorted(SMILES_ALPHABET), "Cl", "Br", "[nH]", "[C@@H]", "%10"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(SMILES_CHARS, max_size=200).map("".join))
def test_strings_of_smiles_characters_parse_or_are_refused(text: str) -> None:
    """Strings of SMILES tokens reach RDKit: it must answer or refuse, never crash."""
    try:
        mol = parse_smiles(text)
    except InvalidSmilesError:
        return
    featurize(mol)
    assert domain_status(text, DomainConfig()) is not None


def _reference_molecules() -> list[str]:
    ref = resources.files("llamo_plugin") / "resources/reference/chebi20_validation.tsv"
    with ref.open(encoding="utf-8") as fh:
        return [row["smiles"] for row in csv.DictReader(fh, delimiter="\t")][:300]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_reference_molecules()), st.integers(0, 2**31 - 1))
def test_rdkit_generated_variants_are_one_molecule(smiles: str, seed: int) -> None:
    """RDKit-generated random SMILES of a real molecule (other atom orders, Kekulé forms)
    pass the guards and canonicalise to the same molecule."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return
    Chem.rdBase.SeedRandomNumberGenerator(seed)
    variant = Chem.MolToSmiles(mol, doRandom=True, canonical=False, kekuleSmiles=seed % 2 == 0)
    assert parse_smiles(variant).isomeric_smiles == parse_smiles(smiles).isomeric_smiles


@pytest.mark.parametrize(
    ("smiles", "expected"),
    [
        ("CCO", "in_domain"),
        ("CC(=O)[O-].[Na+]", "in_domain"),
        ("C[Pt]C", "outside: element Pt"),
        ("[CH3]", "outside: radical"),
        ("*CC", "outside: wildcard atom"),
        ("[O-2]", "outside: formal charge -2 on an atom"),
        ("C" * 600, "outside: 600 heavy atoms (trained on <= 574)"),
        ("C1CC(", None),
    ],
)
def test_applicability_domain(smiles: str, expected: str | None) -> None:
    assert domain_status(smiles, DomainConfig()) == expected
