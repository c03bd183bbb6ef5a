"""The committed test splits (llamo_plugin/resources/splits) are small, fixed and clean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llamo_plugin.chem.smiles import canonical_smiles, mol_from_smiles
from llamo_plugin.train.records import read_jsonl
from llamo_plugin.train.sources import mol_identity, read_chebi, read_qm9
from llamo_plugin.train.splits import (
    N_PROPERTY_TEST,
    PROPERTY_TEST_FILE,
    QA_TEST_FILE,
    default_splits_dir,
    read_property_test,
    verify_property_test,
)

SPLITS = default_splits_dir()


def test_property_test_split_file() -> None:
    rows = read_property_test(SPLITS / PROPERTY_TEST_FILE)
    assert len(rows) == N_PROPERTY_TEST
    assert [r.index for r in rows] == sorted({r.index for r in rows})
    assert len({r.smiles for r in rows}) == N_PROPERTY_TEST
    assert all(-1.0 < r.homo < 0.0 and r.gap > 0 for r in rows)


def test_qa_test_file() -> None:
    records = read_jsonl(SPLITS / QA_TEST_FILE)
    assert 0 < len(records) <= 1500
    assert {r.split for r in records} == {"test"} and {r.task for r in records} == {"qa"}
    assert len({r.smiles for r in records}) == 300


@pytest.mark.parametrize("name", [PROPERTY_TEST_FILE, QA_TEST_FILE])
def test_split_files_are_small(name: str) -> None:
    assert (SPLITS / name).stat().st_size < 400_000


def test_committed_splits_match_the_data(shared_dir: Path, small_context: Any) -> None:
    """Same molecules and values as QM9; no evaluation molecule; QA molecules held out."""
    data = shared_dir / "data"
    rows = read_property_test(SPLITS / PROPERTY_TEST_FILE)
    verify_property_test(rows, read_qm9(data))
    qa = read_jsonl(SPLITS / QA_TEST_FILE)
    evals = small_context.eval_exclusion
    for smiles in {r.smiles for r in rows} | {r.smiles for r in qa}:
        identity = mol_identity(smiles)
        assert identity is not None and not evals.excludes(identity), smiles
    qa_chebi = {r.smiles for r in qa if r.source == "chebi20-validation"}
    qa_qm9 = {r.smiles for r in qa if r.source == "qm9"}
    assert len(qa_chebi) == 100 and len(qa_qm9) == 200
    assert qa_qm9 <= {r.smiles for r in rows}
    chebi = {
        canonical_smiles(mol_from_smiles(r.smiles), isomeric=True)
        for r in read_chebi(data, "validation")
    }
    assert qa_chebi <= chebi
