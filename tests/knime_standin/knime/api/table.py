"""``Table`` and ``BatchOutputTable`` (stand-in of ``knime.api.table``).

Neither can be constructed directly; the Arrow backend (``knime._arrow._table``) provides the
implementations. Only input tables support ``batches()`` (fact ``table.batches``).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any


class _Tabular:
    """What every table offers (implemented by the Arrow backend)."""

    @property
    def num_rows(self) -> int:
        raise NotImplementedError

    @property
    def schema(self) -> Any:
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, int]:
        return (self.num_rows, self.schema.num_columns)

    def to_pandas(self, sentinel: Any = None) -> Any:
        raise NotImplementedError

    def to_pyarrow(self, sentinel: Any = None) -> Any:
        raise NotImplementedError


class Table(_Tabular):
    """A table; build one with :meth:`from_pyarrow` or :meth:`from_pandas`."""

    def __init__(self) -> None:
        raise RuntimeError("use Table.from_pyarrow() or Table.from_pandas() to create a Table")

    @staticmethod
    def from_pyarrow(data: Any, sentinel: Any = None, row_ids: str = "auto") -> Table:
        from knime._arrow import _table

        return _table.from_pyarrow(data, sentinel, row_ids)

    @staticmethod
    def from_pandas(data: Any, sentinel: Any = None, row_ids: str = "auto") -> Table:
        from knime._arrow import _table

        return _table.from_pandas(data, sentinel, row_ids)

    def to_batches(self) -> Iterator[Table]:
        raise RuntimeError("only input tables can be read in batches")

    def batches(self) -> Iterator[Table]:
        raise RuntimeError("only input tables can be read in batches")


class BatchOutputTable(abc.ABC):
    """An output table written batch by batch."""

    def __init__(self) -> None:
        raise RuntimeError("use BatchOutputTable.create() or BatchOutputTable.from_batches()")

    @staticmethod
    def create(row_ids: str = "keep") -> BatchOutputTable:
        from knime._arrow import _table

        return _table.ArrowBatchOutputTable(_table._ArrowDataSink(), row_ids)

    @staticmethod
    def from_batches(generator: Any, row_ids: str = "generate") -> BatchOutputTable:
        out = BatchOutputTable.create(row_ids)
        for batch in generator:
            out.append(batch)
        return out

    @abc.abstractmethod
    def append(self, batch: Any) -> None:
        """Write one batch (Table, pandas.DataFrame, pyarrow.Table or pyarrow.RecordBatch)."""

    @property
    @abc.abstractmethod
    def num_batches(self) -> int:
        """How many batches were written."""
