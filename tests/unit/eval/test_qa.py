"""Q&A records and exact-match accuracy per question type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llamo_plugin.eval.qa import QARecord, is_correct, load_records, normalise_answer, score_answers
from llamo_plugin.pipeline import RowResult


def _row(text: str, stop: str) -> RowResult:
    """A pipeline row as evaluation receives it (``stop``: eos, length or invalid_smiles)."""
    if stop == "invalid_smiles":
        return RowResult("?", "invalid_smiles", error="invalid_smiles: unparseable")
    return RowResult("C", "ok", text=text, stop_reason=stop)


def test_normalisation() -> None:
    assert normalise_answer("  Two   Rings. ") == "two rings"
    assert is_correct("YES", "yes.") and not is_correct("yes, two", "yes")
    assert is_correct(None, "") and not is_correct(None, "no")


def test_load_jsonl_and_tsv(tmp_path: Path) -> None:
    jsonl = tmp_path / "qa.jsonl"
    jsonl.write_text(
        json.dumps(
            {"smiles": "CCO", "instruction": "How many carbons?", "answer": "2", "task": "count"}
        )
        + "\n\n"
        + json.dumps({"SMILES": "C", "question": "Aromatic?", "answer": "no", "qtype": "bool"})
        + "\n"
    )
    assert load_records(jsonl) == [
        QARecord("CCO", "How many carbons?", "2", "count"),
        QARecord("C", "Aromatic?", "no", "bool"),
    ]
    tsv = tmp_path / "qa.tsv"
    tsv.write_text('smiles\tquestion\tanswer\nCCO\tSay "hi"?\thi\n')
    assert load_records(tsv) == [QARecord("CCO", 'Say "hi"?', "hi", "all")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"smiles": "C"}) + "\n")
    with pytest.raises(ValueError, match="question"):
        load_records(bad)


def test_accuracy_per_type() -> None:
    recs = [
        QARecord("C", "q", "2", "count"),
        QARecord("CC", "q", "3", "count"),
        QARecord("c1ccccc1", "q", "yes", "bool"),
        QARecord("x", "q", "no", "bool"),
    ]
    outs = [
        _row("2", "eos"),
        _row("4", "eos"),
        _row("Yes.", "eos"),
        _row("", "invalid_smiles"),
    ]
    metrics, table = score_answers(recs, outs)
    assert metrics["accuracy"] == 0.5
    assert metrics["per_type"] == {
        "bool": {"n": 2, "accuracy": 0.5},
        "count": {"n": 2, "accuracy": 0.5},
    }
    assert metrics["accuracy_macro"] == 0.5 and metrics["n_invalid_smiles"] == 1
    assert [r["status"] for r in table] == ["correct", "wrong", "correct", "invalid_smiles"]
