"""QA answers computed by RDKit, checked by hand."""

from __future__ import annotations

import random

import pytest
from rdkit import Chem

from llamo_plugin.train.build_qa import (
    QUESTIONS,
    QUESTIONS_PER_TEST_MOLECULE,
    ask,
    make_test_records,
)
from llamo_plugin.train.groups import FUNCTIONAL_GROUPS, groups_present
from llamo_plugin.train.splits import PoolMolecule

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"


def _answer(smiles: str, qtype: str, seed: int = 0) -> str:
    return ask(Chem.MolFromSmiles(smiles), qtype, random.Random(seed))[1]


@pytest.mark.parametrize(
    ("qtype", "expected"),
    [
        ("formula", "C9H8O4"),
        ("heavy_atoms", "13"),
        ("rings", "1"),
        ("aromatic_rings", "1"),
        ("hbd", "1"),  # the carboxylic OH (RDKit Lipinski.NumHDonors)
        ("hba", "3"),  # RDKit Lipinski.NumHAcceptors: ester O, acid C=O/OH pattern -> 3
        ("charge", "0"),
        ("functional_groups", "carboxylic acid, ester"),
        ("molecular_weight", "180.16"),
    ],
)
def test_aspirin(qtype: str, expected: str) -> None:
    assert _answer(ASPIRIN, qtype) == expected


@pytest.mark.parametrize(
    ("smiles", "qtype", "expected"),
    [
        ("CC(=O)[O-]", "formula", "C2H3O2-"),
        ("CC(=O)[O-]", "charge", "-1"),
        ("C[N+](C)(C)C", "charge", "1"),
        ("C12C3C4C1C5C2C3C45", "rings", "5"),  # cubane: SSSR (cyclomatic number), not 6
        ("c1ccc2ccccc2c1", "aromatic_rings", "2"),
        ("CCO", "functional_groups", "alcohol"),
        ("CCCC", "functional_groups", "none"),
        ("CCOC(C)=O", "functional_groups", "ester"),
        ("CN(C)C=O", "functional_groups", "amide"),
        ("NC(N)=O", "functional_groups", "urea"),
        ("N#Cc1ccccc1", "functional_groups", "nitrile"),
        ("O=[N+]([O-])c1ccccc1", "functional_groups", "nitro"),
        ("CCN(CC)CC", "functional_groups", "amine"),
        ("COc1ccccc1", "functional_groups", "ether"),
        ("Oc1ccccc1", "functional_groups", "phenol"),
        ("CC=O", "functional_groups", "aldehyde"),
        ("CC(C)=O", "functional_groups", "ketone"),
        ("C=CC#C", "functional_groups", "alkene, alkyne"),
        ("CC1CO1", "functional_groups", "ether, epoxide"),
        ("ClCCBr", "functional_groups", "halogen"),
        ("NCC(=O)O", "functional_groups", "carboxylic acid, amine"),
    ],
)
def test_hand_checked_answers(smiles: str, qtype: str, expected: str) -> None:
    assert _answer(smiles, qtype) == expected


def test_yes_no_and_element_questions_match_the_molecule() -> None:
    mol = Chem.MolFromSmiles(ASPIRIN)
    by_noun = {g.noun: g for g in FUNCTIONAL_GROUPS}
    present = set(groups_present(mol))
    answers = set()
    for seed in range(40):
        text, answer = ask(mol, "has_group", random.Random(seed))
        noun = next(n for n in by_noun if n in text)
        assert answer == ("yes" if by_noun[noun].name in present else "no")
        answers.add(answer)
        text, answer = ask(mol, "element_count", random.Random(seed))
        if "carbon" in text:
            assert answer == "9"
        elif "oxygen" in text:
            assert answer == "4"
        else:
            assert answer == "0"
    assert answers == {"yes", "no"}


def test_every_phrasing_slot_is_filled() -> None:
    mol = Chem.MolFromSmiles(ASPIRIN)
    for question in QUESTIONS:
        assert len(question.phrasings) >= 3
        for seed in range(8):
            text, answer = ask(mol, question.qtype, random.Random(seed))
            assert "{" not in text and answer


def test_test_records_cycle_through_question_types() -> None:
    molecules = [
        PoolMolecule("qm9", str(i), s, f"K{i}")
        for i, s in enumerate(["CCO", "c1ccccc1", "CC(=O)O", "CCN", "C1CC1", "CC#N"])
    ]
    records = make_test_records(molecules)
    assert len(records) == len(molecules) * QUESTIONS_PER_TEST_MOLECULE
    assert {r.qtype for r in records} == {q.qtype for q in QUESTIONS}
    assert {r.split for r in records} == {"test"}
    assert records == make_test_records(molecules)  # deterministic
