"""Streaming molecule tables: read CSV, TSV, Parquet, SDF and SMILES files in batches of rows,
write CSV, TSV or Parquet batch by batch (so a file larger than memory works).

Readers yield :class:`TableBatch` records (a pandas DataFrame and, per row, why the reader
could not read it). Text formats are read with every column as text (values are passed
through unchanged; empty cells are missing). SDF records become rows with ``smiles`` (RDKit
canonical isomeric SMILES; missing for a record RDKit cannot read, which then keeps its title
and data items and gets an ``unreadable_record`` reason), ``name`` (the title line) and one
column per SD property seen in the first batch.

:class:`TableWriter` writes into a temporary file beside the target and renames it into place
only on :meth:`~TableWriter.commit`: an interrupted or failed run never leaves a file that
looks finished, and a target is never half overwritten.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamo_plugin.errors import LlamoError, brief

logger = logging.getLogger(__name__)

READ_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".parquet": "parquet",
    ".sdf": "sdf",
    ".sd": "sdf",
    ".smi": "smi",
    ".smiles": "smi",
}
WRITE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}
SMILES_NAMES = ("smiles", "canonical_smiles", "isomeric_smiles", "smi", "structure")


class TableError(LlamoError):
    """An unusable input or output file (unknown format, missing column, unreadable)."""


@dataclass(frozen=True)
class TableBatch:
    """Consecutive rows of an input table.

    Attributes:
        frame: the rows (pandas DataFrame, text columns as read).
        read_errors: per row, why the reader could not read it (e.g. ``unreadable_record:
            ...`` for an SDF record RDKit cannot parse), else None; None when every row read.
    """

    frame: Any
    read_errors: tuple[str | None, ...] | None = None

    def __len__(self) -> int:
        return len(self.frame)


def check_distinct_files(source: Path, target: Path) -> None:
    """Refuse an output that is the input (same path, a symlink to it, or a hard link):
    writing it would destroy the rows not read yet."""
    same = source.resolve() == target.resolve()
    if not same and target.exists() and source.exists():
        with contextlib.suppress(OSError):
            same = os.path.samefile(source, target)
    if same:
        raise TableError(f"{target}: the output is the input file; choose another output path")


def table_format(path: Path, formats: dict[str, str]) -> str:
    fmt = formats.get(path.suffix.lower())
    if fmt is None:
        raise TableError(
            f"{path}: unsupported file type {path.suffix!r}; use one of {sorted(formats)}"
        )
    return fmt


def find_smiles_column(columns: list[str], wanted: str | None = None) -> str:
    """The SMILES column: ``wanted`` if given, else the first column named like SMILES."""
    if wanted is not None:
        if wanted not in columns:
            raise TableError(f"column {wanted!r} not found; columns: {columns}")
        return wanted
    lower = {c.lower(): c for c in columns}
    for name in SMILES_NAMES:
        if name in lower:
            return lower[name]
    for c in columns:
        if "smiles" in c.lower():
            return c
    raise TableError(f"no SMILES column found (give --smiles-column); columns: {columns}")


def read_batches(path: Path, batch_rows: int = 1000) -> Iterator[TableBatch]:
    """Yield batches of at most ``batch_rows`` rows. An unusable file raises
    :class:`TableError` (at the first ``next``, or where the damage is met)."""
    if path.is_dir():
        raise TableError(f"{path}: is a folder, not a table file")
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    fmt = table_format(path, READ_FORMATS)
    if fmt in ("csv", "tsv"):
        yield from _text_batches(path, fmt, batch_rows)
    elif fmt == "parquet":
        yield from _parquet_batches(path, batch_rows)
    elif fmt == "smi":
        yield from _smi_batches(path, batch_rows)
    else:
        yield from _sdf_batches(path, batch_rows)


def _text_batches(path: Path, fmt: str, batch_rows: int) -> Iterator[TableBatch]:
    import pandas as pd

    try:
        chunks = pd.read_csv(
            path,
            sep="," if fmt == "csv" else "\t",
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            chunksize=batch_rows,
        )
        for frame in chunks:
            yield TableBatch(frame)
    except pd.errors.EmptyDataError:
        raise TableError(f"{path}: empty file (no header line)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise TableError(f"{path}: unreadable {fmt.upper()} ({_first_line(exc)})") from None


def _parquet_batches(path: Path, batch_rows: int) -> Iterator[TableBatch]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        reader = pq.ParquetFile(path)
        for batch in reader.iter_batches(batch_size=batch_rows):
            yield TableBatch(batch.to_pandas())
    except (pa.ArrowException, OSError) as exc:
        raise TableError(f"{path}: unreadable Parquet ({_first_line(exc)})") from None


def _smi_batches(path: Path, batch_rows: int) -> Iterator[TableBatch]:
    import pandas as pd

    rows: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                parts = line.strip().split(None, 1)
                rows.append(
                    {
                        "smiles": parts[0] if parts else None,
                        "name": parts[1] if len(parts) > 1 else None,
                    }
                )
                if len(rows) >= batch_rows:
                    yield TableBatch(pd.DataFrame(rows, columns=["smiles", "name"]))
                    rows = []
    except UnicodeDecodeError as exc:
        raise TableError(f"{path}: unreadable SMILES file ({_first_line(exc)})") from None
    if rows:
        yield TableBatch(pd.DataFrame(rows, columns=["smiles", "name"]))


def _first_line(exc: BaseException) -> str:
    """An exception's message, first line only, briefly (pandas/pyarrow messages can quote
    whole input lines)."""
    text = str(exc).strip().splitlines()
    return brief(text[0], 200).strip("'\"") if text else type(exc).__name__


def estimate_rows(path: Path) -> int:
    """About how many rows ``read_batches`` will yield, read cheaply: Parquet's metadata;
    lines (minus the header) of CSV/TSV, an upper bound when quoted cells hold line breaks;
    lines of SMILES files; ``$$$$`` record ends of SDF. 0 for an unreadable file."""
    fmt = table_format(path, READ_FORMATS)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        marker = b"$$$$" if fmt == "sdf" else b"\n"
        count, last = 0, b""
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                count += (last[-3:] + chunk).count(marker) if fmt == "sdf" else chunk.count(marker)
                last = chunk
        if fmt != "sdf" and last and not last.endswith(b"\n"):
            count += 1  # a last line without a line break
        return max(0, count - 1) if fmt in ("csv", "tsv") else count
    except Exception:  # an estimate; read_batches reports the real problem
        return 0


def _sd_records(path: Path) -> Iterator[str]:
    """The text of each SD record (up to, not including, its ``$$$$`` line)."""
    lines: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.rstrip("\r\n") == "$$$$":
                yield "".join(lines)
                lines = []
            else:
                lines.append(line)
    if any(line.strip() for line in lines):
        yield "".join(lines)  # a last record without its $$$$ line


def _sd_data_items(record: str) -> dict[str, str]:
    """The ``> <name>`` data items of an SD record, read as text (for records RDKit cannot
    read, whose properties are still the user's data)."""
    items: dict[str, str] = {}
    name: str | None = None
    value: list[str] = []
    for line in record.splitlines():
        if name is None:
            if line.startswith(">") and "<" in line and ">" in line[line.index("<") :]:
                name = line[line.index("<") + 1 : line.index(">", line.index("<"))]
                value = []
        elif line.strip():
            value.append(line)
        else:
            items[name] = "\n".join(value)
            name = None
    if name is not None:
        items[name] = "\n".join(value)
    return items


def _sdf_batches(path: Path, batch_rows: int) -> Iterator[TableBatch]:
    import pandas as pd
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    columns: list[str] | None = None
    rows: list[dict[str, Any]] = []
    errors: list[str | None] = []

    def batch() -> TableBatch:
        nonlocal columns
        columns = columns or list(dict.fromkeys(["smiles", "name", *(k for r in rows for k in r)]))
        read = tuple(errors) if any(errors) else None
        return TableBatch(pd.DataFrame(rows).reindex(columns=columns), read)

    for index, record in enumerate(_sd_records(path), start=1):
        title = record.split("\n", 1)[0].strip() or None
        mol = None
        with contextlib.suppress(Exception):  # any RDKit failure is this record's problem
            supplier = Chem.SDMolSupplier()
            supplier.SetData(record + "$$$$\n", sanitize=True, removeHs=True)
            mol = next(iter(supplier), None)
        if mol is None:
            rows.append({"smiles": None, "name": title, **_sd_data_items(record)})
            errors.append(f"unreadable_record: RDKit could not read SD record {index:,}")
        else:
            row = {"smiles": Chem.MolToSmiles(mol), "name": mol.GetProp("_Name") or None}
            row.update({k: str(v) for k, v in mol.GetPropsAsDict().items()})
            rows.append(row)
            errors.append(None)
        if len(rows) >= batch_rows:
            yield batch()
            rows, errors = [], []
    if rows or columns is None:
        yield batch()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class TableWriter:
    """Appends DataFrame batches to a CSV, TSV or Parquet file (schema fixed by the first).

    The rows go to a temporary file beside ``path`` (created at once, so an unwritable
    location fails before any work); :meth:`commit` renames it into place, :meth:`discard`
    (or a failed run) removes it. Use as a context manager: leaving the block without
    ``commit`` discards.
    """

    def __init__(self, path: Path, float_columns: set[str]) -> None:
        self.path = path
        self.format = table_format(path, WRITE_FORMATS)
        self.float_columns = float_columns
        self._parquet: Any = None
        self._schema: Any = None
        self._first = True
        if path.is_dir():
            raise TableError(f"{path}: is a folder; give a file name for the output")
        existing = next((a for a in path.parents if a.exists()), None)
        if existing is not None and not existing.is_dir():
            raise TableError(f"{path}: cannot write here ({existing} is a file, not a folder)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        except OSError as exc:
            raise TableError(f"{path}: cannot write here ({exc.strerror or exc})") from None
        os.close(fd)
        self.tmp_path = Path(tmp)
        os.chmod(self.tmp_path, 0o666 & ~_umask())  # mkstemp's 0600 is for secrets

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()

    def write(self, frame: Any) -> None:
        if self.format in ("csv", "tsv"):
            frame.to_csv(
                self.tmp_path,
                sep="," if self.format == "csv" else "\t",
                index=False,
                header=self._first,
                mode="w" if self._first else "a",
            )
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self._schema is None:
                fields = []
                for name in frame.columns:
                    if name in self.float_columns:
                        fields.append(pa.field(name, pa.float64()))
                    else:
                        inferred = pa.Table.from_pandas(frame[[name]], preserve_index=False)
                        typ = inferred.schema.field(name).type
                        # all missing in the first batch: text, as pandas infers for a text column
                        text = pa.large_string()
                        fields.append(pa.field(name, text if pa.types.is_null(typ) else typ))
                self._schema = pa.schema(fields)
                self._parquet = pq.ParquetWriter(self.tmp_path, self._schema)
            table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
            self._parquet.write_table(table)
        self._first = False

    def commit(self) -> None:
        """Finish the file and rename it into place (atomic on one file system)."""
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        elif self._first and self.format == "parquet":
            raise TableError(f"{self.path}: no rows were written")
        try:
            os.replace(self.tmp_path, self.path)
        except OSError as exc:
            self.discard()
            raise TableError(f"{self.path}: cannot write here ({exc.strerror or exc})") from None

    def discard(self) -> None:
        """Remove the temporary file (idempotent; nothing happens after :meth:`commit`)."""
        if self._parquet is not None:
            with contextlib.suppress(Exception):
                self._parquet.close()
            self._parquet = None
        with contextlib.suppress(FileNotFoundError):
            self.tmp_path.unlink()
