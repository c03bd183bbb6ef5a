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


def test_estimate_rows_matches_the_reader(tmp_path: Path) -> None:
    from rdkit import Chem

    from llamo_plugin.tables import estimate_rows

    csv = tmp_path / "t.csv"
    csv.write_text("id,smiles\n1,CCO\n2,C\n3,CC")  # no final line break
    tsv = tmp_path / "t.tsv"
    tsv.write_text("smiles\nCCO\nC\n")
    smi = tmp_path / "t.smi"
    smi.write_text("CCO ethanol\nC\nCC\nCCC\n")
    sdf = tmp_path / "t.sdf"
    block = Chem.MolToMolBlock(Chem.MolFromSmiles("CCO"))
    sdf.write_text(f"{block}$$$$\n" * 5)
    parquet = tmp_path / "t.parquet"
    pd.DataFrame({"smiles": ["C"] * 7}).to_parquet(parquet)
    for path in (csv, tsv, smi, sdf, parquet):
        rows = sum(len(b) for b in read_batches(path, batch_rows=2))
        assert estimate_rows(path) == rows, path.name
    assert estimate_rows(tmp_path / "missing.csv") == 0


def test_estimate_rows_counts_records_across_read_chunks(tmp_path: Path) -> None:
    from llamo_plugin.tables import estimate_rows

    sdf = tmp_path / "big.sdf"
    record = "x" * 299 + "\n$$$$\n"  # 305 bytes: record ends straddle the 1 MiB read chunks
    sdf.write_text(record * 4000)
    assert estimate_rows(sdf) == 4000
    smi = tmp_path / "big.smi"
    smi.write_text("C" * 99 + "\n" * 1 + ("CCO\n" * 300_000))
    assert estimate_rows(smi) == 300_001
