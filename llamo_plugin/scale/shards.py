"""Shards of a large annotation run and the output folder that makes it restartable.

A run reads one input file or a folder of them (CSV, TSV, Parquet, SDF, SMILES). Each file is
cut into **shards** of ``shard_rows`` consecutive rows, named ``<file stem>-<k:05d>``; every
shard becomes one Parquet file of the output folder, with the input columns kept and the task
columns appended, rows in input order::

    OUT/llamo_run.json              the run's settings (a rerun with other settings is refused)
    OUT/molecules-00000.parquet     finished shards (written whole, renamed into place)
    OUT/.llamo-parts/molecules-00001/000000100000.parquet   annotated batches of a shard
    OUT/.llamo-parts/molecules-00001/rows.json              the shard's row count, once read

Annotated batches are written as *parts* named by their first row (a retried task rewrites
the same file, never a duplicate). A shard is finished when its row count is known and its
parts cover exactly rows ``0 .. n-1``: the parts are then joined into the shard's file and
removed. A rerun skips finished shards, finishes shards whose parts are all there, and
recomputes the others (the answer cache makes that cheap). Nothing here imports Ray.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamo_plugin.errors import brief
from llamo_plugin.tables import READ_FORMATS, TableError, TableWriter

logger = logging.getLogger(__name__)

MANIFEST = "llamo_run.json"
PARTS = ".llamo-parts"
ROWS_FILE = "rows.json"
#: a part's row numbers within its shard (checked when the parts are joined; not in the output)
ROW_COLUMN = "_llamo_row"


@dataclass(frozen=True)
class InputFile:
    """One input table: its path and the stem its shards are named after."""

    path: str
    stem: str


def list_inputs(path: Path) -> list[InputFile]:
    """The input tables: ``path`` itself, or the table files of a folder (sorted by name;
    hidden files skipped). A missing path, a folder without tables or two tables with the same
    stem (their shards would collide) raise :class:`TableError`."""
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in READ_FORMATS
        )
        if not files:
            raise TableError(f"{path}: no table files ({', '.join(sorted(READ_FORMATS))})")
    else:
        raise TableError(f"{path}: no such file or folder")
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise TableError(f"{f} and {stems[f.stem]}: two inputs named {f.stem!r}")
        stems[f.stem] = f
    return [InputFile(str(f), f.stem) for f in files]


def shard_name(stem: str, index: int) -> str:
    return f"{stem}-{index:05d}"


class OutputFolder:
    """The output folder of one run (layout in the module docstring). Every file is written
    under a temporary name and renamed into place, so a crash leaves no half file."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # --- the run's settings -------------------------------------------------------------
    def prepare(self, settings: dict[str, Any]) -> None:
        """Create the folder, or check that an existing one holds a run of the same settings
        (``TableError`` otherwise: its shards would mix two kinds of answers)."""
        manifest = self.root / MANIFEST
        if self.root.exists() and not self.root.is_dir():
            raise TableError(f"{self.root}: is a file; the ray engine writes a folder of shards")
        if manifest.is_file():
            try:
                saved = json.loads(manifest.read_text())
            except (OSError, ValueError) as exc:
                raise TableError(f"{manifest}: unreadable ({exc})") from None
            if saved != settings:
                keys = sorted(k for k in {*saved, *settings} if saved.get(k) != settings.get(k))
                raise TableError(
                    f"{self.root} holds a run with other settings (differs in: "
                    f"{', '.join(keys)}); choose another output folder"
                )
            return
        if self.root.is_dir() and any(p for p in self.root.iterdir()):
            raise TableError(f"{self.root}: not empty and not a llamo run; choose an empty folder")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._write_atomic(manifest, json.dumps(settings, indent=1, sort_keys=True))
        except OSError as exc:
            raise TableError(f"{self.root}: cannot write here ({exc.strerror or exc})") from None

    # --- shards -------------------------------------------------------------------------
    def shard_file(self, shard: str) -> Path:
        return self.root / f"{shard}.parquet"

    def is_done(self, shard: str) -> bool:
        return self.shard_file(shard).is_file()

    def done_shards(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.parquet"))

    def part_dir(self, shard: str) -> Path:
        return self.root / PARTS / shard

    def write_part(self, shard: str, first_row: int, frame: Any) -> Path:
        """Write one annotated batch of ``shard`` (rows ``first_row ..``; the row column kept
        for the check at :meth:`finish`)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder = self.part_dir(shard)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{first_row:012d}.parquet"
        table = pa.Table.from_pandas(frame, preserve_index=False)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".partial", dir=folder)
        os.close(fd)
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return target

    def write_row_count(self, shard: str, rows: int) -> None:
        """Record how many rows ``shard`` has (the reader knows once it has read them all)."""
        folder = self.part_dir(shard)
        folder.mkdir(parents=True, exist_ok=True)
        self._write_atomic(folder / ROWS_FILE, json.dumps({"rows": rows}))

    def row_count(self, shard: str) -> int | None:
        """``shard``'s row count once its reader has recorded it, else None."""
        try:
            return int(json.loads((self.part_dir(shard) / ROWS_FILE).read_text())["rows"])
        except (OSError, ValueError, KeyError):
            return None

    def finish(self, shard: str, float_columns: set[str]) -> bool:
        """Join ``shard``'s parts into its output file if they cover all its rows; return
        whether the shard is finished (True also when it already was)."""
        import pyarrow.parquet as pq

        folder = self.part_dir(shard)
        if self.is_done(shard):  # e.g. a crash between writing the file and removing the parts
            shutil.rmtree(folder, ignore_errors=True)
            return True
        rows = self.row_count(shard)
        if rows is None:
            return False  # still being read
        parts = sorted(folder.glob("*.parquet"))
        expected = 0
        for p in parts:
            if int(p.stem) != expected:
                return False  # a batch is missing (still being annotated)
            expected += pq.ParquetFile(p).metadata.num_rows
        if expected != rows:
            return False
        if rows == 0:
            logger.info("shard %s has no rows: no output file", shard)
            shutil.rmtree(folder, ignore_errors=True)
            return True
        writer = TableWriter(self.shard_file(shard), float_columns)
        try:
            for p in parts:
                frame = pq.read_table(p).to_pandas()
                if not (frame[ROW_COLUMN].diff().dropna() == 1).all():
                    raise TableError(f"{p}: rows out of order")
                writer.write(frame.drop(columns=[ROW_COLUMN]))
            writer.commit()
        finally:
            writer.discard()
        shutil.rmtree(folder, ignore_errors=True)
        return True

    def pending_part_shards(self) -> list[str]:
        parts = self.root / PARTS
        return sorted(p.name for p in parts.iterdir() if p.is_dir()) if parts.is_dir() else []

    def recover(self, float_columns: set[str]) -> tuple[list[str], list[str]]:
        """At the start of a rerun: finish the shards whose parts are complete and remove the
        parts of the others (they are recomputed). Returns (finished, discarded)."""
        finished, discarded = [], []
        for shard in self.pending_part_shards():
            if self.finish(shard, float_columns):
                finished.append(shard)
            else:
                shutil.rmtree(self.part_dir(shard), ignore_errors=True)
                discarded.append(shard)
        return finished, discarded

    def _write_atomic(self, path: Path, text: str) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def describe_inputs(files: list[InputFile]) -> str:
    """A short label of the inputs for log lines."""
    if len(files) == 1:
        return brief(files[0].path, 120)
    return f"{len(files)} files ({brief(files[0].path, 80)}, ...)"
