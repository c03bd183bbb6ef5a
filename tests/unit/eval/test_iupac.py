"""IUPAC sets and scoring (string match + OPSIN round trip)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamo_plugin.chem.opsin import java_available
from llamo_plugin.eval.iupac import NameRow, load_sets, score_names, string_match
from llamo_plugin.pipeline import RowResult


def _row(text: str, stop: str) -> RowResult:
    """A pipeline row as evaluation receives it (``stop``: eos, length or invalid_smiles)."""
    if stop == "invalid_smiles":
        return RowResult("?", "invalid_smiles", error="invalid_smiles: unparseable")
    return RowResult("C", "ok", text=text, stop_reason=stop)


def test_string_match() -> None:
    assert string_match(" ethanol ", "ethanol") is True
    assert string_match("Ethanol", "ethanol") is False  # case matters (R/S, E/Z, D/L)
    assert string_match("ethanol", None) is None and string_match("x", " ") is None


def test_sets_from_shared(shared_dir: Path) -> None:
    data = shared_dir / "data"
    rows = load_sets(data)
    counts = {s: sum(r.set == s for r in rows) for s in dict.fromkeys(r.set for r in rows)}
    assert counts == {
        "chebi20-test": 3300,
        "pubchem-cid1-1000": 999,
        "chemllmbench": 100,
        "stout": 50,
    }
    chebi = [r for r in rows if r.set == "chebi20-test"]
    assert 2900 < sum(r.reference is not None for r in chebi) < 3300
    assert len(load_sets(data, ["stout", "chemllmbench"], limit=3)) == 6
    with pytest.raises(ValueError, match="unknown"):
        load_sets(data, ["nope"])


@pytest.mark.skipif(not java_available(), reason="Java (for OPSIN) not installed")
def test_score_names() -> None:
    rows = [
        NameRow("a", "1", "CCO", "ethanol"),
        NameRow("a", "2", "CCCO", "propan-1-ol"),
        NameRow("b", "3", "C[C@H](O)CC", None),
        NameRow("b", "4", "CC", "ethane"),
    ]
    outs = [
        _row("ethanol", "eos"),
        _row("1-propanol", "eos"),
        _row("butan-2-ol", "length"),
        _row("", "invalid_smiles"),
    ]
    metrics, table = score_names(rows, outs)
    a, b = metrics["sets"]["a"], metrics["sets"]["b"]
    assert a["roundtrip_exact"] == 1.0 and a["string_match"] == 0.5
    assert b["statuses"] == {"invalid_smiles": 1, "stereo_differs": 1}
    assert b["roundtrip_exact"] == 0.0 and b["roundtrip_constitution"] == 0.5
    assert b["n_with_reference"] == 1 and b["string_match"] == 0.0
    assert metrics["all"]["n"] == 4
    assert [r["string_match"] for r in table] == ["1", "0", "", "0"]
    # what the IUPAC node outputs: the model's exact names, openclatura's where the model's
    # name misses the stereocentre, nothing for an invalid SMILES
    assert a["node_sources"] == {"model": 2, "openclatura": 0, "none": 0}
    assert b["node_sources"] == {"model": 0, "openclatura": 1, "none": 1}
    assert b["node_roundtrip_exact"] == 0.5 and metrics["all"]["node_roundtrip_exact"] == 0.75
    assert [r["node_source"] for r in table] == ["model", "model", "openclatura", "none"]
    assert table[2]["node_name"] not in ("", "butan-2-ol")
    alone, _ = score_names(rows, outs, node=False)
    assert "node_roundtrip_exact" not in alone["all"]
