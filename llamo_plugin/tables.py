"""Streaming molecule tables: read CSV, TSV, Parquet, SDF and SMILES files in batches of rows,
write CSV, TSV or Parquet batch by batch (so a file larger than memory works).

Readers yield pandas DataFrames. Text formats are read with every column as text (values are
passed through unchanged; empty cells are missing). SDF records become rows with ``smiles``
(RDKit canonical isomeric SMILES; missing for a record RDKit cannot read), ``name`` (the
title line) and one column per SD property seen in the first batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llamo_plugin.errors import LlamoError

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


def read_batches(path: Path, batch_rows: int = 1000) -> Iterator[Any]:
    """Yield DataFrames of at most ``batch_rows`` rows."""
    import pandas as pd

    if not path.is_file():
        raise TableError(f"{path}: no such file")
    fmt = table_format(path, READ_FORMATS)
    if fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        try:
            yield from pd.read_csv(
                path,
                sep=sep,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                chunksize=batch_rows,
            )
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise TableError(f"{path}: unreadable {fmt.upper()} ({exc})") from exc
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            reader = pq.ParquetFile(path)
        except Exception as exc:
            raise TableError(f"{path}: unreadable Parquet ({exc})") from exc
        for batch in reader.iter_batches(batch_size=batch_rows):
            yield batch.to_pandas()
    elif fmt == "smi":
        rows: list[dict[str, Any]] = []
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
                    yield pd.DataFrame(rows, columns=["smiles", "name"])
                    rows = []
        if rows:
            yield pd.DataFrame(rows, columns=["smiles", "name"])
    else:
        yield from _sdf_batches(path, batch_rows)


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


def _sdf_batches(path: Path, batch_rows: int) -> Iterator[Any]:
    import pandas as pd
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    columns: list[str] | None = None
    rows: list[dict[str, Any]] = []
    with open(path, "rb") as fh:
        for mol in Chem.ForwardSDMolSupplier(fh, sanitize=True, removeHs=True):
            if mol is None:
                rows.append({"smiles": None, "name": None})
            else:
                row = {"smiles": Chem.MolToSmiles(mol), "name": mol.GetProp("_Name") or None}
                row.update({k: str(v) for k, v in mol.GetPropsAsDict().items()})
                rows.append(row)
            if len(rows) >= batch_rows:
                columns = columns or list(dict.fromkeys(k for r in rows for k in r))
                yield pd.DataFrame(rows).reindex(columns=columns)
                rows = []
    if rows or columns is None:
        columns = columns or list(dict.fromkeys(["smiles", "name", *(k for r in rows for k in r)]))
        yield pd.DataFrame(rows).reindex(columns=columns)


class TableWriter:
    """Appends DataFrame batches to a CSV, TSV or Parquet file (schema fixed by the first)."""

    def __init__(self, path: Path, float_columns: set[str]) -> None:
        self.path = path
        self.format = table_format(path, WRITE_FORMATS)
        self.float_columns = float_columns
        self._parquet: Any = None
        self._schema: Any = None
        self._first = True
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, frame: Any) -> None:
        if self.format in ("csv", "tsv"):
            frame.to_csv(
                self.path,
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
                        fields.append(pa.field(name, pa.string() if pa.types.is_null(typ) else typ))
                self._schema = pa.schema(fields)
                self._parquet = pq.ParquetWriter(self.path, self._schema)
            table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
            self._parquet.write_table(table)
        self._first = False

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
