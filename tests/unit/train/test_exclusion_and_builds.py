"""Builders on a small copy of the shared data: exclusion, splits, determinism."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest

from llamo_plugin.train import (
    build_description,
    build_facts,
    build_iupac,
    build_property,
    build_qa,
)
from llamo_plugin.train.exclusion import EVAL_GROUPS
from llamo_plugin.train.records import read_jsonl
from llamo_plugin.train.sources import mol_identity
from tests.unit.train.conftest import SMALL_PLAN

needs_opsin = pytest.mark.skipif(shutil.which("java") is None, reason="needs Java for OPSIN")


def _build_fast(ctx: Any, out: Path, seed: int) -> None:
    build_property.build(out_dir=out, seed=seed, max_molecules=300, context=ctx)
    build_description.build(out_dir=out, seed=seed, context=ctx)
    build_qa.build(out_dir=out, seed=seed, max_molecules=100, context=ctx)
    build_facts.build(out_dir=out, seed=seed, max_molecules=100, names={}, context=ctx)


@pytest.fixture(scope="module")
def built(small_context: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    _build_fast(small_context, out, seed=0)
    return out


def _keys(records: list[Any]) -> set[str]:
    keys = set()
    for r in records:
        ident = mol_identity(r.smiles)
        assert ident is not None and ident.smiles == r.smiles  # stored canonical isomeric
        keys.add(ident.inchikey)
    return keys


def test_small_qm9_holds_evaluation_molecules(small_context: Any) -> None:
    """Otherwise the exclusion tests below would prove nothing."""
    evals = small_context.eval_exclusion
    hits = sum(
        evals.excludes(i) for r in small_context.qm9 if (i := mol_identity(r.smiles)) is not None
    )
    assert hits > 20


def test_no_evaluation_or_held_out_molecule_is_trained_on(small_context: Any, built: Path) -> None:
    exclusion = small_context.exclusion
    eval_keys = set().union(*(exclusion.keys[g] for g in EVAL_GROUPS))
    held_out = small_context.plan.val_keys | small_context.plan.test_keys
    for path in sorted(built.glob("*_train.jsonl")):
        records = read_jsonl(path)
        assert records, path
        keys = _keys(records)
        assert not keys & eval_keys, path.name
        assert not keys & held_out, path.name
        assert {r.split for r in records} == {"train"}
    for path in sorted(built.glob("*_val.jsonl")) + sorted(built.glob("*_test.jsonl")):
        assert not _keys(read_jsonl(path)) & eval_keys, path.name


def test_builders_skip_evaluation_molecules(small_context: Any, tmp_path: Path) -> None:
    stats = build_property.build(out_dir=tmp_path, context=small_context)
    assert any(k.startswith("eval:") for k in stats.skipped), stats.skipped
    desc = build_description.build(out_dir=tmp_path, context=small_context)
    assert desc.skipped["eval:chebi20-test"] > 0
    assert desc.records["val"] >= SMALL_PLAN["n_description_val"]


def test_is_excluded_known_molecules(small_context: Any) -> None:
    exclusion = small_context.exclusion
    assert exclusion.is_excluded("CCCCO")  # butan-1-ol: FreeSolv
    assert "rdkit-nci" in exclusion.reasons(mol_identity("CC1=CC(=O)C=CC1=O"))  # first NCI
    chebi_test_first = "CC1=C(C=C(C=C1)[N+](=O)[O-])[N+](=O)[O-]"
    if mol_identity(chebi_test_first) is not None and exclusion.is_eval(
        mol_identity(chebi_test_first)
    ):
        assert exclusion.is_excluded(chebi_test_first)
    for m in small_context.plan.description_val:
        assert exclusion.is_excluded(m.smiles)
    assert not exclusion.is_excluded("not a smiles")


def test_splits_are_disjoint_by_molecule(built: Path) -> None:
    for task in ("property", "qa", "facts", "description"):
        train = _keys(read_jsonl(built / f"{task}_train.jsonl"))
        val = _keys(read_jsonl(built / f"{task}_val.jsonl"))
        assert val and not train & val, task
    prop_test = _keys(read_jsonl(built / "property_test.jsonl"))
    assert len(prop_test) == SMALL_PLAN["n_property_test"]
    assert not prop_test & _keys(read_jsonl(built / "property_val.jsonl"))
    qa_test = read_jsonl(built / "qa_test.jsonl")
    assert 0 < len(qa_test) <= 1500
    assert not _keys(qa_test) & _keys(read_jsonl(built / "qa_val.jsonl"))


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_deterministic_for_a_seed(small_context: Any, built: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    _build_fast(small_context, again, seed=0)
    assert _digest(again) == _digest(built)
    other = tmp_path / "other"
    build_property.build(out_dir=other, seed=1, max_molecules=300, context=small_context)
    assert (other / "property_train.jsonl").read_bytes() != (
        built / "property_train.jsonl"
    ).read_bytes()
    # the held-out splits do not depend on the sampling seed
    assert _keys(read_jsonl(other / "property_val.jsonl")) == _keys(
        read_jsonl(built / "property_val.jsonl")
    )


@needs_opsin
def test_iupac_build_small(small_context: Any, tmp_path: Path) -> None:
    stats = build_iupac.build(out_dir=tmp_path, max_molecules=15, context=small_context)
    train = read_jsonl(tmp_path / "iupac_train.jsonl")
    assert stats.molecules["train:qm9"] > 0 and stats.molecules["train:chebi20-validation"] > 0
    eval_keys = set().union(*(small_context.exclusion.keys[g] for g in EVAL_GROUPS))
    assert not _keys(train) & eval_keys
    assert not _keys(train) & (small_context.plan.val_keys | small_context.plan.test_keys)
    assert all(r.task == "iupac" and r.answer for r in train)


def test_build_all_writes_a_manifest(small_context: Any, tmp_path: Path) -> None:
    import json

    from llamo_plugin.train.build_all import MANIFEST, build_all
    from llamo_plugin.train.sources import sha256_file

    manifest = build_all(
        out_dir=tmp_path, tasks=("property", "qa"), max_molecules=20, context=small_context
    )
    assert json.loads((tmp_path / MANIFEST).read_text()) == manifest
    files = manifest["files"]
    assert set(files) == {
        "property_train.jsonl",
        "property_val.jsonl",
        "property_test.jsonl",
        "qm9_property_test.csv",
        "qm9_property_val.csv",  # the val slice as a split file (llamo evaluate, selection)
        "qa_train.jsonl",
        "qa_val.jsonl",
        "qa_test.jsonl",
    }
    assert files["property_train.jsonl"]["splits"] == {"train": 60}
    assert files["qa_test.jsonl"]["sha256"] == sha256_file(tmp_path / "qa_test.jsonl")
    assert manifest["builders"]["property"]["records"]["train"] == 60
    assert manifest["exclusion"]["rdkit-nci"] > 4000


def test_cli_is_registered() -> None:
    from llamo_plugin.cli.main import build_parser, main

    args = build_parser().parse_args(["build-data", "--tasks", "qa", "iupac", "--seed", "3"])
    assert args.tasks == ["qa", "iupac"] and args.seed == 3
    assert main(["build-data", "--max-molecules", "0"]) == 2
