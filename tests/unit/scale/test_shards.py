"""The output folder of a sharded run: settings guard, parts, finishing, recovery (no Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from llamo_plugin.scale.shards import (
    MANIFEST,
    ROW_COLUMN,
    OutputFolder,
    list_inputs,
    shard_name,
)
from llamo_plugin.tables import TableError


def _part(rows: range, shard: str = "t-00000") -> pd.DataFrame:
    return pd.DataFrame(
        {"smiles": [f"C{'C' * i}" for i in rows], "gap_hartree": [0.1 * i for i in rows],
         ROW_COLUMN: list(rows)}
    )  # fmt: skip


def test_inputs_a_file_or_the_tables_of_a_folder(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("smiles\nC\n")
    (tmp_path / "a.parquet").write_bytes(b"")
    (tmp_path / "notes.md").write_text("x")
    (tmp_path / ".hidden.csv").write_text("smiles\nC\n")
    assert [f.stem for f in list_inputs(tmp_path)] == ["a", "b"]
    assert [f.stem for f in list_inputs(tmp_path / "b.csv")] == ["b"]
    with pytest.raises(TableError, match="no such file"):
        list_inputs(tmp_path / "missing")
    (tmp_path / "b.tsv").write_text("smiles\nC\n")
    with pytest.raises(TableError, match="two inputs named 'b'"):
        list_inputs(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TableError, match="no table files"):
        list_inputs(empty)


def test_a_folder_of_another_run_or_of_other_files_is_refused(tmp_path: Path) -> None:
    out = OutputFolder(tmp_path / "out")
    out.prepare({"tasks": ["property"]})
    out.prepare({"tasks": ["property"]})  # the same run again: fine
    with pytest.raises(TableError, match=r"other settings \(differs in: tasks\)"):
        out.prepare({"tasks": ["description"]})
    assert json.loads((tmp_path / "out" / MANIFEST).read_text()) == {"tasks": ["property"]}
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.csv").write_text("x\n")
    with pytest.raises(TableError, match="not empty and not a llamo run"):
        OutputFolder(other).prepare({})
    (tmp_path / "file").write_text("x")
    with pytest.raises(TableError, match="is a file"):
        OutputFolder(tmp_path / "file").prepare({})


def test_a_shard_is_finished_only_when_its_parts_cover_every_row(tmp_path: Path) -> None:
    out = OutputFolder(tmp_path)
    shard = shard_name("t", 0)
    out.write_part(shard, 0, _part(range(0, 4)))
    out.write_part(shard, 7, _part(range(7, 10)))
    assert not out.finish(shard, {"gap_hartree"})  # row count unknown
    out.write_row_count(shard, 10)
    assert not out.finish(shard, {"gap_hartree"})  # rows 4..6 missing
    out.write_part(shard, 4, _part(range(4, 7)))
    out.write_part(shard, 4, _part(range(4, 7)))  # a retried batch overwrites, never doubles
    assert out.finish(shard, {"gap_hartree"})
    table = pd.read_parquet(out.shard_file(shard))
    assert list(table.columns) == ["smiles", "gap_hartree"]
    assert table["gap_hartree"].tolist() == pytest.approx([0.1 * i for i in range(10)])
    assert not out.part_dir(shard).exists() and out.is_done(shard)


def test_recover_finishes_complete_shards_and_drops_the_others(tmp_path: Path) -> None:
    out = OutputFolder(tmp_path)
    out.write_part("a-00000", 0, _part(range(3)))
    out.write_row_count("a-00000", 3)
    out.write_part("a-00001", 0, _part(range(2)))  # its reader never finished
    finished, discarded = out.recover(set())
    assert (finished, discarded) == (["a-00000"], ["a-00001"])
    assert out.done_shards() == ["a-00000"] and out.pending_part_shards() == []


def test_an_empty_shard_writes_no_file(tmp_path: Path) -> None:
    out = OutputFolder(tmp_path)
    out.write_row_count("e-00000", 0)
    assert out.finish("e-00000", set())
    assert out.done_shards() == [] and out.pending_part_shards() == []
