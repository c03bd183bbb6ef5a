"""``llamo annotate``: every input format in, CSV/TSV/Parquet out, bad rows as data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from llamo_plugin.checkpoint.format import save_model
from llamo_plugin.cli.main import main

SMILES = ["CCO", "", "C1CC(", "c1ccccc1O", "OCC", "[Na+].[Cl-]", "CC(=O)O"]


@pytest.fixture(scope="module")
def model_dir(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ann") / "model"
    save_model(tiny_model, path)
    return path


def _run(model_dir: Path, *args: str, workers: str = "1") -> int:
    return main(
        ["annotate", *args, "--model", str(model_dir), "--no-cache", "--batch-rows", "3",
         "--workers", workers]
    )  # fmt: skip


def test_csv_to_parquet_streams_and_keeps_columns(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": range(len(SMILES)), "Smiles": SMILES, "note": "x"}).to_csv(src, index=False)
    out = tmp_path / "out.parquet"
    assert _run(model_dir, str(src), "-o", str(out), "--tasks", "description,property", "--ev") == 0
    table = pd.read_parquet(out)
    assert list(table.columns[:3]) == ["id", "Smiles", "note"]
    assert len(table) == len(SMILES)
    assert table["homo_hartree"].dtype == "float64" and table["homo_ev"].dtype == "float64"
    bad = table[table["llamo_error"].notna()]
    assert list(bad["id"]) == ["1", "2"] and bad["description"].isna().all()
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == len(SMILES) and sum(summary["errors"].values()) == 2


def test_sdf_and_smi_inputs_to_csv(model_dir: Path, tmp_path: Path) -> None:
    from rdkit import Chem

    sdf = tmp_path / "in.sdf"
    with Chem.SDWriter(str(sdf)) as w:
        for i, s in enumerate(["CCO", "c1ccccc1"]):
            mol = Chem.MolFromSmiles(s)
            mol.SetProp("_Name", f"mol{i}")
            mol.SetProp("activity", str(i * 1.5))
            w.write(mol)
    out = tmp_path / "sdf.csv"
    assert _run(model_dir, str(sdf), "-o", str(out)) == 0
    table = pd.read_csv(out)
    assert list(table["name"]) == ["mol0", "mol1"] and list(table["activity"]) == [0.0, 1.5]
    assert table["description"].notna().all()

    smi = tmp_path / "in.smi"
    smi.write_text("CCO ethanol\nC1CC( broken\nc1ccccc1O\n")
    out = tmp_path / "smi.tsv"
    assert (
        _run(model_dir, str(smi), "-o", str(out), "--tasks", "qa", "--question", "How many rings?")
        == 0
    )
    table = pd.read_csv(out, sep="\t")
    assert list(table["name"].fillna("")) == ["ethanol", "broken", ""]
    assert table["answer"].isna().tolist() == [False, True, False]


def test_question_column(model_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "q.tsv"
    pd.DataFrame({"smiles": ["CCO", "CCO"], "q": ["Rings?", ""]}).to_csv(src, sep="\t", index=False)
    out = tmp_path / "q.csv"
    assert _run(model_dir, str(src), "-o", str(out), "--tasks", "qa", "--question-column", "q") == 0
    table = pd.read_csv(out)
    assert table["answer"].notna().tolist() == [True, False]


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (lambda p: None, [], "no such file"),
        (lambda p: p.write_text("a,b\n1,2\n"), [], "no SMILES column"),
        (lambda p: p.write_text("smiles\nCCO\n"), ["--smiles-column", "x"], "not found"),
        (lambda p: p.write_text("smiles\nCCO\n"), ["--tasks", "summarise"], "tasks"),
        (lambda p: p.write_text("smiles\nCCO\n"), ["--tasks", "qa"], "question"),
    ],
)
def test_unusable_input_or_options_exit_2(
    model_dir: Path,
    tmp_path: Path,
    make: Any,
    extra: list[str],
    message: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    src = tmp_path / "in.csv"
    make(src)
    assert _run(model_dir, str(src), "-o", str(tmp_path / "o.csv"), *extra) == 2
    assert message in caplog.text


def test_unknown_output_format(model_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("smiles\nCCO\n")
    assert _run(model_dir, str(src), "-o", str(tmp_path / "o.xlsx")) == 2
    assert not (tmp_path / "o.xlsx").exists()


def test_worker_processes_write_the_same_table(model_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    pd.DataFrame({"smiles": SMILES * 2}).to_csv(src, index=False)
    outs = []
    for workers in ("1", "2"):
        out = tmp_path / f"out{workers}.csv"
        assert (
            _run(model_dir, str(src), "-o", str(out), "--tasks", "description", workers=workers)
            == 0
        )
        outs.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(outs[0], outs[1])
    assert outs[1]["description"].notna().sum() == 10


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_bad_worker_count_is_a_usage_error(value: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["annotate", "x.csv", "-o", "y.csv", "--workers", value])
    assert info.value.code == 2 and "positive integer" in capsys.readouterr().err
