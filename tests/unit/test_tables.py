"""Streaming table readers and writers."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from llamo_plugin.tables import TableError, TableWriter, find_smiles_column, read_batches


def test_csv_batches_keep_text_and_missing(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("id,smiles,x\n001,CCO,1.50\n002,,\n003,C1CC(,NA\n")
    batches = list(read_batches(src, batch_rows=2))
    assert [len(b) for b in batches] == [2, 1]
    assert all(b.read_errors is None for b in batches)
    frame = pd.concat(b.frame for b in batches)
    assert list(frame["id"]) == ["001", "002", "003"]  # text kept as is, no int parsing
    assert pd.isna(frame["smiles"].iloc[1]) and frame["x"].iloc[2] == "NA"


def test_sdf_bad_record_is_a_row(tmp_path: Path) -> None:
    from rdkit import Chem

    good = Chem.MolToMolBlock(Chem.MolFromSmiles("CCO"))
    lines = good.splitlines()
    lines[4] = lines[4][:31] + "Xx" + lines[4][33:]  # an unknown element symbol
    bad = "\n".join(lines) + "\n"
    sdf = tmp_path / "t.sdf"
    named = "broken one" + bad[bad.index("\n") :] + "> <activity>\n7.5\n\n"
    sdf.write_text(f"{good}$$$$\n{named}$$$$\n{good}$$$$\n")
    (batch,) = read_batches(sdf, batch_rows=10)
    frame = batch.frame
    assert len(frame) == 3
    assert frame["smiles"].isna().tolist() == [False, True, False]
    # The unreadable record keeps its title and data items and says why it has no SMILES.
    assert frame["name"].iloc[1] == "broken one" and frame["activity"].iloc[1] == "7.5"
    assert batch.read_errors is not None
    assert batch.read_errors[0] is None and batch.read_errors[2] is None
    assert batch.read_errors[1].startswith("unreadable_record: ") and "2" in batch.read_errors[1]


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
    writer.commit()
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


def test_writer_is_atomic(tmp_path: Path) -> None:
    """Rows go to a temporary file; the target appears only on commit, whole."""
    for name in ("o.csv", "o.parquet"):
        out = tmp_path / name
        out.write_text("an earlier result\n")
        with TableWriter(out, float_columns=set()) as writer:
            writer.write(pd.DataFrame({"s": ["a", "b"]}))
            assert out.read_text() == "an earlier result\n"  # untouched while writing
        # Leaving without commit (an error, an interrupt) discards, and keeps the old file.
        assert out.read_text() == "an earlier result\n"
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
        with TableWriter(out, float_columns=set()) as writer:
            writer.write(pd.DataFrame({"s": ["a", "b"]}))
            writer.write(pd.DataFrame({"s": ["c"]}))
            writer.commit()
        read = pd.read_csv(out) if name.endswith("csv") else pd.read_parquet(out)
        assert list(read["s"]) == ["a", "b", "c"]
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
        out.unlink()


def test_unwritable_outputs_fail_at_once(tmp_path: Path) -> None:
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(TableError, match="is a folder"):
        TableWriter(tmp_path / "folder.csv", set())
    with pytest.raises(TableError, match="file is a file, not a folder"):
        TableWriter(tmp_path / "file" / "o.csv", set())
    with pytest.raises(TableError, match="file is a file, not a folder"):
        TableWriter(tmp_path / "file" / "deeper" / "o.csv", set())
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions
            pytest.skip("running as a user who may write anywhere")
        with pytest.raises(TableError, match="cannot write here"):
            TableWriter(locked / "o.csv", set())
    finally:
        locked.chmod(0o700)


def test_output_that_is_the_input_is_refused(tmp_path: Path) -> None:
    from llamo_plugin.tables import check_distinct_files

    src = tmp_path / "t.csv"
    src.write_text("smiles\nCCO\n")
    (tmp_path / "link.csv").symlink_to(src)
    os.link(src, tmp_path / "hard.csv")
    for same in (src, tmp_path / "." / "t.csv", tmp_path / "link.csv", tmp_path / "hard.csv"):
        with pytest.raises(TableError, match="the output is the input"):
            check_distinct_files(src, same)
    check_distinct_files(src, tmp_path / "other.csv")
    assert src.read_text() == "smiles\nCCO\n"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("e.csv", b"", "empty file"),
        ("b.csv", b'smiles\n"CCO\n', "unreadable CSV"),
        ("x.parquet", b"PAR1 not really", "unreadable Parquet"),
        ("u.smi", b"CCO \xff\xfe\n", "unreadable SMILES file"),
    ],
)
def test_unreadable_files_give_one_line_errors(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TableError, match=message) as info:
        list(read_batches(path))
    assert "\n" not in str(info.value) and len(str(info.value)) < 400
