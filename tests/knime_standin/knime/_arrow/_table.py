"""Arrow tables, input tables read in batches, and the batch-size rule of KNIME's output sink
(stand-in of ``knime._arrow._table`` and the sink of ``_arrow._backend``).

Facts reproduced: a batch of an input table is an ``ArrowTable`` over a ``pyarrow.RecordBatch``
and its ``to_pyarrow()`` keeps that container (``table.read``); ``<RowID>`` is the first
column; logical columns stay extension arrays; the sink fixes the chunk size from the first
batch, a later batch may be smaller only once and is then the last (``batch_output``);
``from_pyarrow`` rejects uneven record batches (``table.factories``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from knime._arrow import _types as kat
from knime.api import schema as ks
from knime.api.table import BatchOutputTable, Table

ROW_ID = ks.ROW_KEY


def _check_batch_sizes_constant(sizes: list[int]) -> None:
    """All batches but the last have the first one's size; the last is not larger."""
    if len(sizes) > 1 and (any(n != sizes[0] for n in sizes[:-1]) or sizes[-1] > sizes[0]):
        raise ValueError(
            f"record batches must all have the first batch's size, except a smaller last one; "
            f"got {sizes}"
        )


def _generated_ids(n: int, offset: int = 0) -> pa.Array:
    return pa.array([f"Row{offset + i}" for i in range(n)], pa.string())


def _with_row_ids(data: pa.Table, row_ids: str, offset: int = 0) -> pa.Table:
    """``data`` with a first ``<RowID>`` string column, following the ``row_ids`` mode."""
    if row_ids not in ("auto", "keep", "generate"):
        raise ValueError(f"row_ids must be 'auto', 'keep' or 'generate', got {row_ids!r}")
    first = data.column_names[0] if data.num_columns else None
    if row_ids == "generate":
        if first == ROW_ID:
            data = data.remove_column(0)
        return data.add_column(0, ROW_ID, _generated_ids(data.num_rows, offset))
    if row_ids == "keep" or first == ROW_ID:
        if first is None:
            raise ValueError("row_ids='keep' needs a first column with the row ids")
        ids = data.column(0)
        if pa.types.is_integer(ids.type):
            ids = pa.array([f"Row{n}" for n in ids.to_pylist()], pa.string())
        elif not pa.types.is_string(ids.type):
            raise TypeError(f"row ids must be strings or integers, got {ids.type}")
        return data.remove_column(0).add_column(0, ROW_ID, ids)
    return data.add_column(0, ROW_ID, _generated_ids(data.num_rows, offset))


def from_pyarrow(data: Any, sentinel: Any = None, row_ids: str = "auto") -> ArrowTable:
    if sentinel is not None:
        raise NotImplementedError("sentinels are not modelled by the stand-in")
    if not isinstance(data, pa.Table):
        raise TypeError(f"Table.from_pyarrow expects a pyarrow.Table, got {type(data).__name__}")
    _check_batch_sizes_constant([b.num_rows for b in data.to_batches()])
    return ArrowTable(_with_row_ids(data, row_ids))


def from_pandas(data: Any, sentinel: Any = None, row_ids: str = "auto") -> ArrowTable:
    """Through Arrow, with missing values as None; registered value objects (e.g.
    ``SmilesValue``) make a logical column."""
    import pandas as pd

    if sentinel is not None:
        raise NotImplementedError("sentinels are not modelled by the stand-in")
    index = data.index
    if row_ids == "generate" or (
        row_ids == "auto" and isinstance(index, pd.RangeIndex) and index.start == 0
    ):
        ids = [f"Row{i}" for i in range(len(data))]
    elif pd.api.types.is_integer_dtype(index):
        ids = [f"Row{n}" for n in index]
    else:
        ids = [str(i) for i in index]
    arrays, fields = [pa.array(ids, pa.string())], [pa.field(ROW_ID, pa.string())]
    for name in data.columns:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"column names must be non-blank strings, got {name!r}")
        arr = _pandas_column(data[name])
        arrays.append(arr)
        fields.append(pa.field(name, arr.type))
    return ArrowTable(pa.Table.from_arrays(arrays, schema=pa.schema(fields)))


def _pandas_column(series: Any) -> pa.Array:
    import pandas as pd

    values = [None if _missing(v) else v for v in series.tolist()]
    first = next((v for v in values if v is not None), None)
    if first is not None and type(first) in ks._LOGICAL_OF:
        return kat.encode(values, ks.logical(type(first)))
    if isinstance(series.dtype, pd.StringDtype):
        return pa.array(values, pa.string())
    if pd.api.types.is_float_dtype(series.dtype):
        return pa.array(values, pa.float64())
    if pd.api.types.is_integer_dtype(series.dtype):
        return pa.array(values, pa.int64())
    if pd.api.types.is_bool_dtype(series.dtype):
        return pa.array(values, pa.bool_())
    return pa.array(values)  # inferred (all missing -> null)


def _missing(value: Any) -> bool:
    import pandas as pd

    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


class ArrowTable(Table):
    """A table over a ``pyarrow.Table`` or ``pyarrow.RecordBatch`` (``<RowID>`` first)."""

    def __init__(self, table: pa.Table | pa.RecordBatch) -> None:
        self._table = table

    @property
    def num_rows(self) -> int:
        return self._table.num_rows

    @property
    def num_columns(self) -> int:
        return self._table.num_columns - 1

    @property
    def column_names(self) -> list[str]:
        return self._table.column_names[1:]

    @property
    def schema(self) -> ks.Schema:
        fields = list(self._table.schema)[1:]
        return ks.Schema([kat.from_arrow_type(f.type) for f in fields], [f.name for f in fields])

    def to_pyarrow(self, sentinel: Any = None) -> pa.Table | pa.RecordBatch:
        if sentinel is not None:
            raise NotImplementedError("sentinels are not modelled by the stand-in")
        return self._table

    def to_pandas(self, sentinel: Any = None) -> Any:
        """String columns as pandas ``string`` with ``pd.NA``, integers with missing values as
        float64, logical columns as objects of their value class."""
        import pandas as pd

        if sentinel is not None:
            raise NotImplementedError("sentinels are not modelled by the stand-in")
        data = {}
        for name in self.column_names:
            col = self._table.column(name)
            values = col.to_pylist()
            if isinstance(col.type, kat.LogicalExtensionType):
                data[name] = pd.Series(values, dtype=object)
            elif pa.types.is_string(col.type):
                data[name] = pd.Series(values, dtype="string")
            elif pa.types.is_integer(col.type):
                data[name] = pd.Series(values, dtype="float64" if None in values else "int64")
            elif pa.types.is_floating(col.type):
                data[name] = pd.Series(values, dtype="float64")
            else:
                data[name] = pd.Series(values, dtype=object)
        frame = pd.DataFrame(data)
        frame.index = pd.Index(self._table.column(0).to_pylist(), dtype=object)
        return frame


class _ArrowDataSource:
    """A table as KNIME stored it: record batches of one size (the last may be smaller)."""

    def __init__(self, schema: pa.Schema, batches: list[pa.RecordBatch]) -> None:
        _check_batch_sizes_constant([b.num_rows for b in batches])
        self.schema = schema
        self.batches = batches


class ArrowSourceTable(ArrowTable):
    """An input table: read whole, or batch by batch as KNIME stored it."""

    def __init__(self, source: _ArrowDataSource) -> None:
        super().__init__(pa.Table.from_batches(source.batches, schema=source.schema))
        self._source = source

    @property
    def schema(self) -> ks.Schema:
        return kat.with_knime_metadata(super().schema)

    @property
    def num_batches(self) -> int:
        return len(self._source.batches)

    def batches(self) -> Iterator[ArrowTable]:
        for batch in self._source.batches:
            yield ArrowTable(batch)

    def to_batches(self) -> Iterator[ArrowTable]:
        return self.batches()


class _ArrowDataSink:
    """Receives the output batches; enforces one Arrow schema and KNIME's batch-size rule."""

    def __init__(self) -> None:
        self.schema: pa.Schema | None = None
        self.batches: list[pa.RecordBatch] = []
        self._chunk_size: int | None = None
        self._last_written = False

    def write(self, batch: pa.RecordBatch) -> None:
        if self.schema is None:
            self.schema = batch.schema
        elif not batch.schema.equals(self.schema, check_metadata=False):
            raise ValueError(f"batch schema {batch.schema} differs from the first {self.schema}")
        n = batch.num_rows
        if self._chunk_size is None:
            self._chunk_size = n
        elif self._last_written:
            raise ValueError(
                f"a batch of {n} rows after a smaller batch: only the last batch may be smaller "
                f"than the first ({self._chunk_size} rows)"
            )
        elif n > self._chunk_size:
            raise ValueError(
                f"batch of {n} rows is bigger than the first batch ({self._chunk_size} rows)"
            )
        elif n < self._chunk_size:
            self._last_written = True
        self.batches.append(batch)


class ArrowBatchOutputTable(BatchOutputTable):
    """Appends batches to a sink; row ids kept (``keep``) or generated (``generate``)."""

    def __init__(self, sink: _ArrowDataSink, row_ids: str = "keep") -> None:
        if row_ids not in ("keep", "generate"):
            raise ValueError(f"row_ids must be 'keep' or 'generate', got {row_ids!r}")
        self._sink = sink
        self._row_ids = row_ids
        self._rows = 0
        self._num_batches = 0

    def append(self, batch: Any) -> None:
        import pandas as pd

        if isinstance(batch, ArrowTable):
            data = batch._table
            if isinstance(data, pa.RecordBatch):
                data = pa.Table.from_batches([data])
            if self._row_ids == "generate":
                data = _with_row_ids(data, "generate", self._rows)
        elif isinstance(batch, pd.DataFrame):
            data = from_pandas(batch, row_ids="keep" if self._row_ids == "keep" else "generate")
            data = _with_row_ids(data._table, self._row_ids, self._rows)
        elif isinstance(batch, pa.Table | pa.RecordBatch):
            data = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
            data = _with_row_ids(data, self._row_ids, self._rows)
        else:
            raise TypeError(f"cannot append a {type(batch).__name__} to a BatchOutputTable")
        record_batches = data.to_batches() or [
            pa.RecordBatch.from_pylist([], schema=data.schema)  # an empty table: one empty batch
        ]
        for record_batch in record_batches:
            self._sink.write(record_batch)
        self._rows += data.num_rows
        self._num_batches += 1

    @property
    def num_batches(self) -> int:
        return self._num_batches


def _make_source_table(data: pa.Table, batch_rows: int | None = None) -> ArrowSourceTable:
    """An input table as KNIME would store ``data`` (``<RowID>`` first): batches of
    ``batch_rows`` rows (all but the last), none for an empty table."""
    if data.num_rows == 0:
        return ArrowSourceTable(_ArrowDataSource(data.schema, []))
    table = data.combine_chunks()
    size = batch_rows or table.num_rows
    batches = [
        b
        for start in range(0, table.num_rows, size)
        for b in table.slice(start, size).combine_chunks().to_batches()
    ]
    return ArrowSourceTable(_ArrowDataSource(table.schema, batches))


def _source_from_sink(out: ArrowBatchOutputTable) -> ArrowSourceTable:
    """What the next node reads: the batches exactly as this node wrote them."""
    sink = out._sink
    if sink.schema is None:
        raise ValueError("no batch was appended to the BatchOutputTable")
    return ArrowSourceTable(_ArrowDataSource(sink.schema, list(sink.batches)))
