"""Streaming table readers and writers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from llamo_plugin.tables import TableError, TableWriter, find_smiles_column, read_batches


def test_csv_batches_keep_text_and_missing(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("id,smiles,x\n001,CCO,1.50\n002,,\n003,C1CC(,NA\n")
    batches = list(read_batches(src, batch_rows=2))
    assert [len(b) for b in batches] == [2, 1]
    frame = pd.concat(batches)
    assert list(frame["id"]) == ["001", "002", "003"]  # text kept as is, no int parsing
    assert pd.isna(frame["smiles"].iloc[1]) and frame["x"].iloc[2] == "NA"


def test_sdf_bad_record_is_a_row(tmp_path: Path) -> None:
    from rdkit import Chem

    good = Chem.MolToMolBlock(Chem.MolFromSmiles("CCO"))
    lines = good.splitlines()
    lines[4] = lines[4][:31] + "Xx" + lines[4][33:]  # an unknown element symbol
    bad = "\n".join(lines) + "\n"
    sdf = tmp_path / "t.sdf"
    sdf.write_text(f"{good}$$$$\n{bad}$$$$\n{good}$$$$\n")
    frame = pd.concat(read_batches(sdf, batch_rows=10))
    assert len(frame) == 3
    assert frame["smiles"].isna().tolist() == [False, True, False]


def test_find_smiles_column() -> None:
    assert find_smiles_column(["id", "SMILES"]) == "SMILES"
    assert find_smiles_column(["id", "mol_smiles_str"]) == "mol_smiles_str"
    with pytest.raises(TableError, match="no SMILES column"):
        find_smiles_column(["id", "name"])


def test_parquet_writer_types_all_missing_batches(tmp_path: Path) -> None:
    out = tmp_path / "o.parquet"
    writer = TableWriter(out, float_columns={"v"})
    writer.write(pd.DataFrame({"s": ["a", "b"], "v": [None, None], "t": [None, None]}))
    writer.write(pd.DataFrame({"s": ["c"], "v": [1.5], "t": ["x"]}))
    writer.close()
    table = pd.read_parquet(out)
    assert table["v"].dtype == "float64" and list(table["t"].fillna("")) == ["", "", "x"]


def test_unsupported_formats(tmp_path: Path) -> None:
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(TableError, match="unsupported"):
        next(read_batches(tmp_path / "t.xlsx"))
    with pytest.raises(TableError, match="unsupported"):
        TableWriter(tmp_path / "o.json", set())
