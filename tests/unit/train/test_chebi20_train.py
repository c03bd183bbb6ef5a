"""Structure-only records of the ChEBI-20 train molecules (``build_chebi20_train``)."""

from __future__ import annotations

import csv
import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest

from llamo_plugin.train import build_chebi20_train
from llamo_plugin.train.build_iupac import opsin_parse
from llamo_plugin.train.records import read_jsonl
from llamo_plugin.train.sources import (
    CHEBI_TRAIN,
    mol_identity,
    read_chebi_train_structures,
    read_eval_smiles,
)

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="needs Java for OPSIN")

#: Last rows of the real file in the fake one, beside a made-up salt (two fragments: no Q&A) and a
#: ChEBI-20 test molecule (excluded).
REAL_ROWS = 12
SALT = "CC1=CC(=O)N(CC2CCCCC2)C(=O)C1C(=O)[O-].[K+]"


@pytest.fixture(scope="module")
def built(small_context: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    data = tmp_path_factory.mktemp("data")
    for folder in small_context.data_dir.iterdir():
        if folder.name != "chebi-20-train-smiles":
            (data / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
    real = read_chebi_train_structures(small_context.data_dir)[-REAL_ROWS:]  # CIDs > 1000
    test_smiles = read_eval_smiles(small_context.data_dir, "chebi20-test")[0]
    (data / "chebi-20-train-smiles").mkdir()
    with (data / "chebi-20-train-smiles" / "chebi20_train_smiles.tsv").open("w") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["CID", "SMILES"])
        for cid, smiles in (*real, ("-1", SALT), ("-2", test_smiles)):
            writer.writerow([cid, smiles])
    ctx = dataclasses.replace(small_context, data_dir=data)
    out = tmp_path_factory.mktemp("build")
    stats = build_chebi20_train.build(out_dir=out, context=ctx)
    allowed = set()
    for _, smiles in (*real, ("-1", SALT)):
        ident = mol_identity(smiles)
        if ident is not None and not small_context.exclusion.excludes(ident):
            allowed.add(ident.smiles)
    return stats, out, allowed


Built = tuple[Any, Path, set[str]]


def test_evaluation_molecules_are_excluded(built: Built, small_context: Any) -> None:
    stats, out, allowed = built
    assert len(allowed) >= REAL_ROWS // 2  # otherwise the test would prove little
    assert stats.molecules["train"] == len(allowed)
    assert stats.skipped["eval:chebi20-test"] == 1
    seen = set()
    for kind in ("qa", "iupac", "facts"):
        for rec in read_jsonl(out / f"chebi20train_{kind}_train.jsonl"):
            ident = mol_identity(rec.smiles)
            assert ident is not None and not small_context.exclusion.excludes(ident)
            assert rec.split == "train"
            seen.add(rec.smiles)
    assert seen == allowed


def test_qa_is_asked_of_single_fragments_only(built: Built) -> None:
    stats, out, allowed = built
    qa = read_jsonl(out / "chebi20train_qa_train.jsonl")
    salt = mol_identity(SALT)
    assert salt is not None and salt.smiles in allowed
    assert {r.source for r in qa} == {CHEBI_TRAIN}
    assert {r.smiles for r in qa} == allowed - {salt.smiles}
    assert len(qa) == 3 * (len(allowed) - 1)  # three question types per molecule
    assert stats.skipped["qa:multi-fragment"] == 1


def test_names_round_trip_and_facts_use_them(built: Built) -> None:
    _, out, _ = built
    names = read_jsonl(out / "chebi20train_iupac_train.jsonl")
    assert len(names) >= 3
    parsed = opsin_parse([r.answer for r in names])  # each kept name parses back exactly
    for rec, back in zip(names, parsed, strict=True):
        ident = mol_identity(back)
        assert ident is not None and ident.smiles == rec.smiles
    facts = read_jsonl(out / "chebi20train_facts_train.jsonl")
    assert {r.task for r in facts} == {"description"}
    by_smiles = {r.smiles: r.answer for r in facts}
    assert any(rec.answer in by_smiles.get(rec.smiles, "") for rec in names)
