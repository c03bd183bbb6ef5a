"""InstructionRecord and its JSONL files."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamo_plugin.train.records import InstructionRecord, read_jsonl, write_jsonl


def _record(**changes: object) -> InstructionRecord:
    fields = {
        "task": "qa",
        "smiles": "CC(=O)Oc1ccccc1C(=O)O",
        "instruction": "What is the molecular formula of this molecule?",
        "answer": "C9H8O4",
        "source": "qm9",
        "split": "train",
        "qtype": "formula",
    }
    fields.update(changes)
    return InstructionRecord(**fields)  # type: ignore[arg-type]


def test_jsonl_round_trip(tmp_path: Path) -> None:
    records = [_record(), _record(qtype=None, task="iupac", answer="ünïcode name")]
    path = tmp_path / "x" / "r.jsonl"
    assert write_jsonl(path, records) == 2
    assert read_jsonl(path) == records
    assert not path.with_name("r.jsonl.tmp").exists()
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith('{"task": "qa", "smiles": ')  # field order is the file order


def test_record_validation() -> None:
    with pytest.raises(ValueError, match="split"):
        _record(split="dev")
    with pytest.raises(ValueError, match="answer"):
        _record(answer="  ")
    with pytest.raises(ValueError, match="unknown"):
        InstructionRecord.from_dict({**_record().to_dict(), "extra": 1})


def test_read_reports_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"task": "qa"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        read_jsonl(path)


def test_user_text_is_llamo_prompt() -> None:
    rec = _record(smiles="C[C@H](N)C(=O)O", instruction="Describe this molecule.")
    assert rec.user_text() == "CC(N)C(=O)O<graph> Describe this molecule."
    assert rec.user_text(max_smiles_chars=4) == "CC(N<graph> Describe this molecule."
