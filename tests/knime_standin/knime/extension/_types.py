"""KNIME column types, Column and Schema (stand-in of ``knime.api.schema``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any


class KnimeType:
    """A column type. Primitive types are singletons compared by identity of their name."""

    def __init__(self, name: str, inner: tuple[KnimeType, ...] = (), py_type: Any = None) -> None:
        self.name = name
        self.inner = inner
        self.py_type = py_type

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, KnimeType)
            and self.name == other.name
            and self.inner == other.inner
            and self.py_type is other.py_type
        )

    def __hash__(self) -> int:
        return hash((self.name, self.inner, id(self.py_type)))

    def __repr__(self) -> str:
        if self.py_type is not None:
            return f"logical({self.py_type.__name__})"
        if self.inner:
            return f"{self.name}({', '.join(map(repr, self.inner))})"
        return f"{self.name}()"


_PRIMITIVES = {
    n: KnimeType(n) for n in ("string", "double", "int32", "int64", "bool", "blob", "null")
}
_LOGICAL: dict[Any, KnimeType] = {}


def string() -> KnimeType:
    return _PRIMITIVES["string"]


def double() -> KnimeType:
    return _PRIMITIVES["double"]


def int32() -> KnimeType:
    return _PRIMITIVES["int32"]


def int64() -> KnimeType:
    return _PRIMITIVES["int64"]


def bool_() -> KnimeType:
    return _PRIMITIVES["bool"]


def blob() -> KnimeType:
    return _PRIMITIVES["blob"]


def null() -> KnimeType:
    return _PRIMITIVES["null"]


def list_(inner: KnimeType) -> KnimeType:
    return KnimeType("list", (inner,))


def logical(py_type: Any) -> KnimeType:
    """The registered logical type of ``py_type`` (TypeError if none is registered)."""
    if py_type not in _LOGICAL:
        raise TypeError(f"no logical type registered for {py_type!r}")
    return _LOGICAL[py_type]


def register_logical(py_type: Any) -> KnimeType:
    _LOGICAL.setdefault(py_type, KnimeType("logical", (), py_type))
    return _LOGICAL[py_type]


class Column:
    """A named, typed column; equality on type, name and metadata."""

    def __init__(self, ktype: Any, name: str, metadata: dict[str, Any] | None = None) -> None:
        if not isinstance(ktype, KnimeType):
            ktype = logical(ktype)
        if not isinstance(name, str) or not name:
            raise TypeError(f"column name must be a non-empty str, got {name!r}")
        self.ktype = ktype
        self.name = name
        self.metadata = metadata

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Column)
            and self.ktype == other.ktype
            and self.name == other.name
            and self.metadata == other.metadata
        )

    def __repr__(self) -> str:
        return f"Column({self.ktype!r}, {self.name!r})"


class Schema:
    """An ordered list of columns. Derived schemas are returned as views; ``get()``
    materialises them, and a Schema never equals a view (as in KNIME)."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self._columns = list(columns)

    @classmethod
    def from_columns(cls, columns: Column | Sequence[Column]) -> Schema:
        return cls([columns] if isinstance(columns, Column) else list(columns))

    @classmethod
    def from_types(cls, ktypes: Sequence[KnimeType], names: Sequence[str]) -> Schema:
        return cls([Column(t, n) for t, n in zip(ktypes, names, strict=True)])

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self._columns]

    @property
    def num_columns(self) -> int:
        return len(self._columns)

    def __iter__(self) -> Iterator[Column]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    def __contains__(self, name: object) -> bool:
        return name in self.column_names

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            if key not in self:
                raise KeyError(key)
            return _SchemaView(Schema([c for c in self._columns if c.name == key][:1]))
        if isinstance(key, int):
            return _SchemaView(Schema([self._columns[key]]))
        if isinstance(key, slice):
            return _SchemaView(Schema(self._columns[key]))
        return _SchemaView(Schema([self[k].get()._columns[0] for k in key]))

    def append(self, other: Column | Sequence[Column] | Schema) -> _SchemaView:
        extra = (
            other._columns
            if isinstance(other, Schema)
            else ([other] if isinstance(other, Column) else list(other))
        )
        return _SchemaView(Schema(self._columns + extra))

    def remove(self, key: str | int | Sequence[str]) -> _SchemaView:
        names = [key] if isinstance(key, str | int) else list(key)
        keep = [c for i, c in enumerate(self._columns) if c.name not in names and i not in names]
        return _SchemaView(Schema(keep))

    def get(self) -> Schema:
        return self

    def __eq__(self, other: object) -> bool:
        return type(other) is Schema and self._columns == other._columns

    def __repr__(self) -> str:
        return f"Schema({self._columns!r})"


class _SchemaView:
    """A lazy view of a schema: attribute access delegates, ``get()`` materialises."""

    def __init__(self, schema: Schema) -> None:
        self._schema = schema

    def get(self) -> Schema:
        return self._schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)

    def __iter__(self) -> Iterator[Column]:
        return iter(self._schema)

    def __eq__(self, other: object) -> bool:
        return False if isinstance(other, Schema) else NotImplemented  # KNIME: Schema != view

    def __getitem__(self, key: Any) -> Any:
        return self._schema[key]
