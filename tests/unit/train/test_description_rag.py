"""Retrieval-augmented description records: leave-one-out neighbours, PCdes restyled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llamo_plugin.prompt.neighbours import HEADER, MAX_SMILES_CHARS
from llamo_plugin.train import build_description_rag
from llamo_plugin.train.records import read_jsonl
from llamo_plugin.train.sources import mol_identity, restyle_pcdes


def test_restyle_pcdes() -> None:
    assert (
        restyle_pcdes("N-benzoylalanine is an N-acylamino acid. It is a metabolite.")
        == "The molecule is an N-acylamino acid. It is a metabolite."
    )
    assert restyle_pcdes("Cyclic peptides are a class of ...") == "The molecule is a class of ..."
    assert restyle_pcdes("No subject here.") is None


def test_records_never_retrieve_their_own_molecule(small_context: Any, tmp_path: Path) -> None:
    stats = build_description_rag.build(out_dir=tmp_path, context=small_context, no_context=0.2)
    train = read_jsonl(tmp_path / "description_rag_train.jsonl")
    val = read_jsonl(tmp_path / "description_rag_val.jsonl")
    assert stats.records["train"] == len(train) > 3000 and len(val) == stats.records["val"] > 0
    assert {r.source for r in train} == {"chebi20-validation", "pcdes"}
    assert all(r.answer.startswith("The molecule") for r in train if r.source == "pcdes")
    with_context = [r for r in train + val if r.instruction.startswith(HEADER)]
    assert all(r.instruction.startswith(HEADER) for r in val)  # val: always retrieval
    assert 0.7 < sum(r.instruction.startswith(HEADER) for r in train) / len(train) < 0.9
    for rec in with_context[:400] + with_context[-200:]:
        own = mol_identity(rec.smiles).inchikey[:14]
        block = rec.instruction.split(" [2] ")
        assert len(block) == 2  # k = 2 neighbours
        for part in (block[0].split(" [1] ")[1], block[1]):
            neighbour = part.split(" (similarity ")[0]
            if len(neighbour) < MAX_SMILES_CHARS:  # longer ones are cut in the prompt
                # not itself, nor a stereoisomer or another protonation state of it
                assert mol_identity(neighbour).inchikey[:14] != own
            assert rec.answer not in part  # never its own caption
    train_keys = {mol_identity(r.smiles).inchikey for r in train}
    assert not train_keys & {mol_identity(r.smiles).inchikey for r in val}
