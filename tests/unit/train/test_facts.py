"""ChEBI-style RDKit facts, checked by hand."""

from __future__ import annotations

import random

import pytest
from rdkit import Chem

from llamo_plugin.train.build_facts import article, describe, facts_of


def _classes(smiles: str) -> set[str]:
    return set(facts_of(Chem.MolFromSmiles(smiles)).classes)


def _text(smiles: str, name: str | None = None) -> str:
    text = describe(Chem.MolFromSmiles(smiles), name)
    assert text is not None
    return text


@pytest.mark.parametrize(
    ("smiles", "expected", "absent"),
    [
        ("CCO", {"primary alcohol"}, {"secondary alcohol"}),
        ("CO", {"primary alcohol"}, set()),
        ("CC(C)O", {"secondary alcohol"}, {"primary alcohol"}),
        ("CC(C)(C)O", {"tertiary alcohol"}, set()),
        ("CC(=O)O", {"monocarboxylic acid"}, {"organic anion"}),
        ("OC(=O)CC(=O)O", {"dicarboxylic acid"}, {"monocarboxylic acid"}),
        ("CC(C)=O", {"methyl ketone"}, {"ketone"}),  # generic class subsumed
        ("C=CC(C)=O", {"enone", "methyl ketone"}, {"olefinic compound"}),
        ("CCOC(C)=O", {"acetate ester", "ethyl ester"}, {"carboxylic ester", "ether"}),
        ("O=C1CCCO1", {"gamma-lactone", "organic heteromonocyclic compound"}, set()),
        ("O=C1CCCCCN1", {"epsilon-lactam", "secondary carboxamide"}, set()),
        ("c1ccccc1", {"member of benzenes", "carbomonocyclic compound"}, set()),
        ("c1ccncc1", {"member of pyridines", "organic heteromonocyclic compound"}, set()),
        ("c1ccc2[nH]ccc2c1", {"member of indoles", "organic heterobicyclic compound"}, set()),
        ("COc1ccccc1", {"aromatic ether"}, {"ether"}),
        ("CCOCC", {"ether"}, set()),
        ("C1CCOC1", {"member of oxolanes"}, {"cyclic ether"}),
        ("CC1CO1", {"epoxide"}, set()),
        ("CC#N", {"nitrile"}, set()),
        ("CCN(CC)CC", {"tertiary amino compound"}, set()),
        ("CCNCC", {"secondary amino compound"}, set()),
        ("Nc1ccccc1", {"primary arylamine"}, {"primary amino compound"}),
        ("Nc1ccccn1", {"primary amino compound", "member of pyridines"}, {"primary arylamine"}),
        ("C[C@H](N)C(=O)O", {"alpha-amino acid", "primary amino compound"}, set()),
        ("[NH3+]CC(=O)[O-]", {"alpha-amino-acid zwitterion"}, {"organic anion"}),
        ("CC(=O)[O-]", {"monocarboxylic acid anion"}, {"organic anion"}),
        ("C[N+](C)(C)C", {"quaternary ammonium ion", "organic cation"}, {"zwitterion"}),
        ("O=[N+]([O-])c1ccccc1", {"C-nitro compound"}, {"zwitterion"}),
        ("CCN.Cl", {"hydrochloride"}, set()),
        ("C1CC2CCC1C2", {"bridged compound", "carbobicyclic compound", "hydrocarbon"}, set()),
        ("CCCC", {"alkane"}, {"hydrocarbon"}),
        ("C1CCCCC1", {"cycloalkane"}, set()),
        ("ClCCF", {"organochlorine compound", "organofluorine compound"}, set()),
    ],
)
def test_classes(smiles: str, expected: set[str], absent: set[str]) -> None:
    classes = _classes(smiles)
    assert expected <= classes
    assert not (absent & classes)


def test_carboxylic_acid_sentences_use_the_name() -> None:
    text = _text("CC(=O)O", "acetic acid")
    assert text.startswith(
        "The molecule is acetic acid, a monocarboxylic acid."
    ) or text.startswith("The molecule is a monocarboxylic acid that is acetic acid.")
    assert text.endswith("It is a conjugate acid of an acetate.")
    base = _text("CCC(=O)[O-]", "propanoate")
    assert "It has a net charge of -1." in base
    assert base.endswith("It is a conjugate base of a propanoic acid.")
    assert _text("CCC(=O)O").endswith("It is a conjugate acid of a monocarboxylic acid anion.")


def test_ring_and_charge_sentences() -> None:
    assert "It contains a six-membered ring." in _text("c1ccccc1")
    assert "It contains two five-membered rings." in _text("C1CC2CCC1C2")
    assert "It contains a five-membered ring and a six-membered ring." in _text("c1ccc2[nH]ccc2c1")
    assert "It has a net charge of +1." in _text("C[N+](C)(C)C")
    assert "net charge" not in _text("[NH3+]CC(=O)[O-]")
    assert "ring" not in _text("CCO")


def test_aspirin_caption() -> None:
    text = describe(
        Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O"), "2-(acetyloxy)benzoic acid", random.Random(0)
    )
    assert text is not None
    assert "member of benzoic acids" in text and "acetate ester" in text
    assert text.endswith("It is a conjugate acid of a 2-(acetyloxy)benzoate.")
    assert "role" not in text


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("acetate", "an"),
        ("member of benzenes", "a"),
        ("2-hydroxybenzoate", "a"),
        ("8-hydroxyoctanoate", "an"),
        ("organic cation", "an"),
        ("N-acetylglycine", "an"),
        ("(2S)-butan-2-ol", "a"),
        ("hydrocarbon", "a"),
        ("alpha-amino acid", "an"),
    ],
)
def test_article(phrase: str, expected: str) -> None:
    assert article(phrase) == expected
