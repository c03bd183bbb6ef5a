"""Tables (stand-in of ``knime.api.table`` on the Arrow backend).

Every table is stored as Arrow with a first ``<RowID>`` string column, so data make the same
pandas -> Arrow -> pandas round trip as in KNIME: string columns come back as pandas
``"string"`` dtype with ``pd.NA``, integers with missing values as float64 NaN, and an all-None
object column becomes Arrow ``null`` (which no longer matches a configured string column).
SMILES columns (type ``logical(SmilesValue)``) decode to ``SmilesValue`` or None.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from knime.extension import _types as kt

ROW_ID = "<RowID>"
#: Rows per batch of ``batches()`` (KNIME cuts at ~64 MB; tests set it small).
BATCH_ROWS = 1000


def _ktype(arrow_type: Any, logical: dict[str, Any], name: str) -> kt.KnimeType:
    import pyarrow as pa

    if name in logical:
        return kt.logical(logical[name])
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return kt.string()
    if pa.types.is_floating(arrow_type):
        return kt.double()
    if pa.types.is_int32(arrow_type):
        return kt.int32()
    if pa.types.is_integer(arrow_type):
        return kt.int64()
    if pa.types.is_boolean(arrow_type):
        return kt.bool_()
    if pa.types.is_null(arrow_type):
        return kt.null()
    if pa.types.is_list(arrow_type):
        return kt.list_(_ktype(arrow_type.value_type, {}, ""))
    return kt.blob()


class Table:
    """An immutable table; build it with :meth:`from_pandas` or :meth:`from_pyarrow`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("use Table.from_pandas or Table.from_pyarrow")

    @classmethod
    def _make(cls, arrow: Any, logical: dict[str, Any]) -> Table:
        obj = object.__new__(cls)
        obj._arrow = arrow
        obj._logical = logical
        return obj

    @classmethod
    def from_pyarrow(cls, data: Any, sentinel: Any = None, row_ids: str = "auto") -> Table:
        import pyarrow as pa

        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        if data.num_columns and data.column_names[0] == ROW_ID:
            table = data
        else:
            ids = pa.array([f"Row{i}" for i in range(data.num_rows)], pa.string())
            table = data.add_column(0, ROW_ID, ids)
        logical = {}
        for name in table.column_names[1:]:
            if table.schema.field(name).metadata and b"knime_logical" in (
                table.schema.field(name).metadata or {}
            ):
                logical[name] = _LOGICAL_BY_NAME[
                    table.schema.field(name).metadata[b"knime_logical"].decode()
                ]
        return cls._make(table, logical)

    @classmethod
    def from_pandas(cls, df: Any, sentinel: Any = None, row_ids: str = "auto") -> Table:
        import pandas as pd
        import pyarrow as pa

        if row_ids == "keep" or (row_ids == "auto" and not pd.api.types.is_integer_dtype(df.index)):
            ids = [str(i) for i in df.index]
        else:
            ids = [f"Row{i}" for i in range(len(df))]
        arrays = [pa.array(ids, pa.string())]
        fields = [pa.field(ROW_ID, pa.string())]
        for name in df.columns:
            if not isinstance(name, str) or not name:
                raise TypeError(f"column names must be non-empty str, got {name!r}")
            series = df[name]
            values = [None if _missing(v) else v for v in series.tolist()]
            first = next((v for v in values if v is not None), None)
            metadata = None
            if (
                first is not None
                and type(first).__name__ in _LOGICAL_BY_NAME
                and type(first) is not str
            ):
                typ = pa.string()
                metadata = {b"knime_logical": type(first).__name__.encode()}
                values = [None if v is None else str(v) for v in values]
            elif isinstance(series.dtype, pd.StringDtype):
                typ = pa.string()
            elif pd.api.types.is_float_dtype(series.dtype):
                typ = pa.float64()
            elif pd.api.types.is_integer_dtype(series.dtype):
                typ = pa.int64()
            elif pd.api.types.is_bool_dtype(series.dtype):
                typ = pa.bool_()
            else:
                typ = None  # inferred from the values (all None -> null)
            arr = pa.array(values, type=typ) if typ is not None else pa.array(values)
            arrays.append(arr)
            fields.append(pa.field(name, arr.type, metadata=metadata))
        return cls.from_pyarrow(pa.Table.from_arrays(arrays, schema=pa.schema(fields)))

    # ----------------------------------------------------------------- reading
    @property
    def schema(self) -> kt.Schema:
        return kt.Schema(
            [
                kt.Column(_ktype(self._arrow.schema.field(n).type, self._logical, n), n)
                for n in self._arrow.column_names[1:]
            ]
        )

    @property
    def num_rows(self) -> int:
        return self._arrow.num_rows

    @property
    def num_columns(self) -> int:
        return self._arrow.num_columns - 1

    @property
    def column_names(self) -> list[str]:
        return self._arrow.column_names[1:]

    def to_pyarrow(self, sentinel: Any = None) -> Any:
        return self._arrow

    def to_pandas(self, sentinel: Any = None) -> Any:
        import pandas as pd
        import pyarrow as pa

        data = {}
        for name in self.column_names:
            col = self._arrow.column(name)
            if name in self._logical:
                cls = self._logical[name]
                data[name] = pd.Series(
                    [None if v is None else cls(v) for v in col.to_pylist()], dtype=object
                )
            elif pa.types.is_string(col.type):
                data[name] = pd.Series(col.to_pylist(), dtype="string")
            elif pa.types.is_integer(col.type):
                values = col.to_pylist()
                data[name] = (
                    pd.Series(values, dtype="float64")
                    if None in values
                    else pd.Series(values, dtype="int64")
                )
            else:
                data[name] = pd.Series(
                    col.to_pylist(), dtype="float64" if pa.types.is_floating(col.type) else object
                )
        frame = pd.DataFrame(data)
        frame.index = pd.Index(self._arrow.column(ROW_ID).to_pylist(), dtype=object)
        return frame

    def batches(self) -> Iterator[Table]:
        for start in range(0, max(self.num_rows, 1), BATCH_ROWS):
            if start >= self.num_rows and self.num_rows:
                break
            yield Table._make(self._arrow.slice(start, BATCH_ROWS), self._logical)

    @property
    def num_batches(self) -> int:
        return max(1, -(-self.num_rows // BATCH_ROWS))


def _missing(v: Any) -> bool:
    import pandas as pd

    try:
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


class BatchOutputTable:
    """Batches appended one by one; every batch must have the same column names and types."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("use BatchOutputTable.create()")

    @classmethod
    def create(cls, row_ids: str = "keep") -> BatchOutputTable:
        obj = object.__new__(cls)
        obj._batches = []
        obj._row_ids = row_ids
        return obj

    def append(self, batch: Any) -> None:
        import pandas as pd

        if isinstance(batch, pd.DataFrame):
            batch = Table.from_pandas(batch, row_ids=self._row_ids)
        elif not isinstance(batch, Table):
            batch = Table.from_pyarrow(batch)
        if self._batches:
            first = self._batches[0]
            if first.schema != batch.schema:
                raise ValueError(
                    f"batch schema {batch.schema} differs from the first batch's {first.schema}"
                )
        self._batches.append(batch)

    @property
    def num_batches(self) -> int:
        return len(self._batches)

    def to_table(self) -> Table:
        import pyarrow as pa

        if not self._batches:
            raise ValueError("no batches were appended")
        merged = pa.concat_tables([b._arrow for b in self._batches])
        return Table._make(merged, self._batches[0]._logical)


_LOGICAL_BY_NAME: dict[str, Any] = {}


def register_logical_class(cls: Any) -> None:
    kt.register_logical(cls)
    _LOGICAL_BY_NAME[cls.__name__] = cls
