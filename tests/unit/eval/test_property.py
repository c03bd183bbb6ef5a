"""Property answers: number parsing, MAE with unparseable answers counted, split loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamo_plugin.eval.property import (
    PropertyRow,
    load_property_split,
    parse_number,
    property_metrics,
    score_answers,
)
from llamo_plugin.pipeline import RowResult


def _row(text: str, stop: str) -> RowResult:
    """A pipeline row as evaluation receives it (``stop``: eos, length or invalid_smiles)."""
    if stop == "invalid_smiles":
        return RowResult("?", "invalid_smiles", error="invalid_smiles: unparseable")
    return RowResult("C", "ok", text=text, stop_reason=stop)


def test_parse_number() -> None:
    assert parse_number("-0.2482") == -0.2482
    assert parse_number("The HOMO is -0.25 Hartree.") == -0.25
    assert parse_number("0.0123 and 7") == 0.0123
    assert parse_number("3") == 3.0
    assert parse_number("about minus a quarter") is None
    assert parse_number("") is None and parse_number(None) is None


def test_metrics_count_unparseable_answers() -> None:
    refs = [-0.25, -0.20, -0.30, -0.25]
    got = property_metrics(refs, [-0.24, None, -0.28, None])
    assert got["n"] == 4 and got["n_parsed"] == 2 and got["n_unparseable"] == 2
    assert got["valid_rate"] == 0.5
    assert got["mae"] == pytest.approx((0.01 + 0.02) / 2)
    # failures scored as the mean reference (-0.25): errors 0.05 and 0.0
    assert got["mae_failures_as_mean"] == pytest.approx((0.01 + 0.05 + 0.02 + 0.0) / 4)
    assert got["mae_mean_baseline"] == pytest.approx((0 + 0.05 + 0.05 + 0) / 4)
    none = property_metrics([1.0], [None])
    assert none["mae"] is None and none["n_unparseable"] == 1


def test_score_answers_per_target_and_table() -> None:
    rows = [
        PropertyRow("C", {"homo": -0.4, "lumo": 0.1, "gap": 0.5}),
        PropertyRow("CO", {"homo": -0.3, "lumo": 0.0, "gap": 0.3}),
    ]
    answers = {
        "homo": [_row("-0.4000", "eos"), _row("no idea", "eos")],
        "lumo": [_row("0.1100", "eos"), _row("0.0000", "length")],
        "gap": [_row("0.5000", "eos"), _row("", "invalid_smiles")],
    }
    metrics, table = score_answers(rows, answers)
    assert metrics["unit"] == "Hartree"
    assert metrics["targets"]["homo"]["n_unparseable"] == 1
    assert metrics["targets"]["lumo"]["mae"] == pytest.approx(0.005)
    assert metrics["n_unparseable"] == 2 and metrics["n_answers"] == 6
    assert metrics["mae_mean"] == pytest.approx((0.0 + 0.005 + 0.0) / 3)
    assert [r["status"] for r in table] == ["ok", "unparseable", "ok", "ok", "ok", "invalid_smiles"]
    assert table[0]["reference"] == "-0.4000" and table[0]["target"] == "homo"


def test_load_split_wide_and_by_qm9_index(tmp_path: Path) -> None:
    wide = tmp_path / "wide.csv"
    wide.write_text("smiles,homo,lumo,gap\nC,-0.3877,0.1171,0.5048\nN,-0.2570,0.0829,0.3399\n")
    rows = load_property_split(wide)
    assert rows[0] == PropertyRow("C", {"homo": -0.3877, "lumo": 0.1171, "gap": 0.5048})
    assert len(load_property_split(wide, limit=1)) == 1
    qm9 = tmp_path / "qm9.csv"
    qm9.write_text(
        "Index,SMILES,HOMO_au,LUMO_au,HOMO_LUMO_gap_au\n1,C,-0.3877,0.1171,0.5048\n"
        "2,N,-0.2570,0.0829,0.3399\n"
    )
    split = tmp_path / "split.csv"
    split.write_text("index\n2\n")
    assert load_property_split(split, qm9_path=qm9) == [
        PropertyRow("N", {"homo": -0.2570, "lumo": 0.0829, "gap": 0.3399})
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("molecule,value\nC,1\n")
    with pytest.raises(ValueError, match="columns"):
        load_property_split(bad)
