"""Description data: ChEBI-20 rows, prediction files joined by SMILES (doubled backslashes)."""

from __future__ import annotations

from pathlib import Path

from llamo_plugin.eval.common import clean_field, read_tsv, smiles_key, write_results
from llamo_plugin.eval.description import (
    CaptionRow,
    join_predictions,
    load_chebi20,
    load_prediction_file,
)


def test_smiles_key_undoubles_backslashes() -> None:
    assert smiles_key("C/C=C\\\\C ") == smiles_key("C/C=C\\C") == "C/C=C\\C"


def test_prediction_file_join(tmp_path: Path) -> None:
    pred = tmp_path / "p.txt"
    pred.write_text(
        'SMILES\tground truth\toutput\nC/C=C\\C\tref "a"\t[CLS] The molecule "x".\n'
        "CCO\tref\tAn alcohol.\n"
    )
    preds = load_prediction_file(pred)
    assert preds == {"C/C=C\\C": 'The molecule "x".', "CCO": "An alcohol."}
    rows = [
        CaptionRow("1", "C/C=C\\\\C", "r1"),
        CaptionRow("2", "CCO", "r2"),
        CaptionRow("3", "CCN", "r3"),
    ]
    got, statuses = join_predictions(rows, preds)
    assert got == ['The molecule "x".', "An alcohol.", ""]
    assert statuses == ["ok", "ok", "missing"]


def test_our_own_tsv_round_trips(tmp_path: Path) -> None:
    rows = [
        {
            "smiles": "CCO",
            "reference": 'a "quoted"\tcaption',
            "prediction": "two\nlines",
            "status": "eos",
            "cid": 7,
        }
    ]
    json_path, tsv_path = write_results(tmp_path, "description", {"n": 1}, rows, ["cid"])
    back = read_tsv(tsv_path)
    assert list(back[0]) == ["smiles", "reference", "prediction", "status", "cid"]
    assert back[0]["reference"] == 'a "quoted" caption' and back[0]["prediction"] == "two lines"
    assert load_prediction_file(tsv_path) == {"CCO": "two lines"}
    assert json_path.read_text().strip().startswith("{")
    assert clean_field(None) == ""


def test_chebi20_test_file(shared_dir: Path) -> None:
    rows = load_chebi20(shared_dir / "data" / "chebi-20" / "test.txt")
    assert len(rows) == 3300
    assert len({smiles_key(r.smiles) for r in rows}) == 3300
    assert load_chebi20(shared_dir / "data" / "chebi-20" / "test.txt", limit=5) == rows[:5]
