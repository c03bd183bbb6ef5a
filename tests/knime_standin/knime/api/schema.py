"""Column types, ``Column``, ``Schema`` and ``PortObjectSpec`` (stand-in of ``knime.api.schema``).

Written from the fact sheet (facts ``schema.*``, ``column.rules``, ``types.equality``), not
from KNIME's code. What the nodes must live with: a ``Schema`` is built from types and names
(not from a list of columns) and has no ``len``; ``view == schema`` compares contents while
``schema == view`` is False; column names must be non-blank; duplicate names fail only when
KNIME receives configure's result (``Schema.serialize``).
"""

from __future__ import annotations

import abc
import enum
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

ROW_KEY = "<RowID>"


class PortObjectSpec(abc.ABC):
    """Base of port specs: JSON-serialisable, rebuilt by ``deserialize``."""

    @abc.abstractmethod
    def serialize(self) -> dict:
        """The spec as a JSON-serialisable dict."""

    @classmethod
    @abc.abstractmethod
    def deserialize(cls, data: dict, java_callback: Any = None) -> PortObjectSpec:
        """Rebuild the spec (the backend retries with ``data`` only on TypeError)."""


# ----------------------------------------------------------------------------------- types
class KnimeType:
    """Base of all column types."""


class PrimitiveTypeId(enum.Enum):
    INT = "Number (Integer)"
    LONG = "Number (Long Integer)"
    STRING = "String"
    DOUBLE = "Number (Float)"
    BOOL = "Boolean"
    BLOB = "blob"
    NULL = "null"


class DictEncodingKeyType(enum.Enum):
    INT = "INT_KEY"
    LONG = "LONG_KEY"
    BYTE = "BYTE_KEY"


_PRIMITIVES: dict[tuple[PrimitiveTypeId, DictEncodingKeyType | None], PrimitiveType] = {}


class PrimitiveType(KnimeType):
    """One instance per (type id, dictionary-encoding key), so ``==`` is identity."""

    def __new__(
        cls, type_id: PrimitiveTypeId, key_type: DictEncodingKeyType | None = None
    ) -> PrimitiveType:
        if not isinstance(type_id, PrimitiveTypeId):
            raise TypeError(f"type_id must be a PrimitiveTypeId, got {type_id!r}")
        key = (type_id, key_type)
        if key not in _PRIMITIVES:
            instance = super().__new__(cls)
            instance._type_id = type_id
            instance._key_type = key_type
            _PRIMITIVES[key] = instance
        return _PRIMITIVES[key]

    def __init__(self, type_id: PrimitiveTypeId, key_type: DictEncodingKeyType | None = None):
        """State is set once in ``__new__`` (instances are shared)."""

    @property
    def dict_encoding_key_type(self) -> DictEncodingKeyType | None:
        return self._key_type

    @property
    def plain_type(self) -> PrimitiveType:
        return PrimitiveType(self._type_id)

    def __repr__(self) -> str:
        key = f", {self._key_type.name}" if self._key_type else ""
        return f"PrimitiveType({self._type_id.name}{key})"


class ListType(KnimeType):
    def __init__(self, inner_type: KnimeType) -> None:
        self._inner = inner_type

    @property
    def inner_type(self) -> KnimeType:
        return self._inner

    def __eq__(self, other: object) -> bool:
        return type(other) is ListType and self._inner == other._inner

    def __hash__(self) -> int:
        return hash(("list", self._inner))

    def __repr__(self) -> str:
        return f"list_({self._inner!r})"


class StructType(KnimeType):
    def __init__(self, inner_types: Iterable[KnimeType]) -> None:
        self._inner = tuple(inner_types)

    @property
    def inner_types(self) -> tuple[KnimeType, ...]:
        return self._inner

    def __eq__(self, other: object) -> bool:
        return type(other) is StructType and self._inner == other._inner

    def __hash__(self) -> int:
        return hash(("struct", self._inner))

    def __repr__(self) -> str:
        return f"struct{self._inner!r}"


class LogicalType(KnimeType):
    """A value type registered by a KNIME plugin (e.g. SMILES) over a storage type."""

    def __init__(
        self, logical_type: str, storage_type: KnimeType, proxy_type_converter: Any = None
    ) -> None:
        self._logical_type = logical_type
        self._storage = storage_type
        self._proxy = proxy_type_converter

    @property
    def logical_type(self) -> str:
        return self._logical_type

    @property
    def storage_type(self) -> KnimeType:
        return self._storage

    @property
    def value_type(self) -> type | None:
        return _VALUE_TYPE_OF.get(_canonical(self._logical_type))

    @property
    def proxy_type(self) -> Any:
        return self._proxy

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is LogicalType
            and _canonical(self._logical_type) == _canonical(other._logical_type)
            and self._storage == other._storage
            and self._proxy == other._proxy
        )

    def __hash__(self) -> int:
        return hash(_canonical(self._logical_type))

    def __repr__(self) -> str:
        value = self.value_type
        return f"logical({value.__name__ if value else self._logical_type})"


def _canonical(logical_type: str) -> str:
    return json.dumps(json.loads(logical_type), sort_keys=True)


# Registered value types (KNIME registers them from each plugin's plugin.xml).
_LOGICAL_OF: dict[type, LogicalType] = {}
_VALUE_TYPE_OF: dict[str, type] = {}


def _register_value_type(value_type: type, value_factory: str, storage: KnimeType) -> None:
    """What a plugin's registration gives: ``logical(value_type)`` and the way back."""
    logical_type = json.dumps({"value_factory_class": value_factory})
    _LOGICAL_OF[value_type] = LogicalType(logical_type, storage)
    _VALUE_TYPE_OF[_canonical(logical_type)] = value_type


def int32() -> PrimitiveType:
    return PrimitiveType(PrimitiveTypeId.INT)


def int64() -> PrimitiveType:
    return PrimitiveType(PrimitiveTypeId.LONG)


def double() -> PrimitiveType:
    return PrimitiveType(PrimitiveTypeId.DOUBLE)


def bool_() -> PrimitiveType:
    return PrimitiveType(PrimitiveTypeId.BOOL)


def string(dict_encoding_key_type: DictEncodingKeyType | None = None) -> PrimitiveType:
    return PrimitiveType(PrimitiveTypeId.STRING, dict_encoding_key_type)


def blob(dict_encoding_key_type: DictEncodingKeyType | None = None) -> PrimitiveType:
    return PrimitiveType(PrimitiveTypeId.BLOB, dict_encoding_key_type)


def null() -> PrimitiveType:
    return PrimitiveType(PrimitiveTypeId.NULL)


def list_(inner_type: KnimeType) -> ListType:
    return ListType(inner_type)


def struct(*inner_types: KnimeType) -> StructType:
    return StructType(inner_types)


def logical(value_type: Any) -> LogicalType:
    """The logical type of a registered value class; TypeError if no plugin registered it."""
    if value_type not in _LOGICAL_OF:
        raise TypeError(f"{value_type!r} is not a registered KNIME value type")
    return _LOGICAL_OF[value_type]


def _type_to_dict(ktype: KnimeType) -> dict[str, Any]:
    if isinstance(ktype, PrimitiveType):
        key = ktype.dict_encoding_key_type
        return {"primitive": ktype._type_id.name, "key": key.name if key else None}
    if isinstance(ktype, ListType):
        return {"list": _type_to_dict(ktype.inner_type)}
    if isinstance(ktype, StructType):
        return {"struct": [_type_to_dict(t) for t in ktype.inner_types]}
    if isinstance(ktype, LogicalType):
        return {"logical": ktype.logical_type, "storage": _type_to_dict(ktype.storage_type)}
    raise TypeError(f"not a KNIME type: {ktype!r}")


def _type_from_dict(data: dict[str, Any]) -> KnimeType:
    if "primitive" in data:
        key = DictEncodingKeyType[data["key"]] if data["key"] else None
        return PrimitiveType(PrimitiveTypeId[data["primitive"]], key)
    if "list" in data:
        return ListType(_type_from_dict(data["list"]))
    if "struct" in data:
        return StructType(_type_from_dict(t) for t in data["struct"])
    return LogicalType(data["logical"], _type_from_dict(data["storage"]))


# ------------------------------------------------------------------------ columns, schemas
class Column:
    """A typed, named column; equal when type, name and metadata are (None differs from {})."""

    def __init__(self, ktype: Any, name: str, metadata: dict | None = None) -> None:
        if not isinstance(ktype, KnimeType):
            ktype = logical(ktype)  # a Python value type; TypeError if unknown
        if not isinstance(name, str):
            raise TypeError(f"column name must be a str, got {type(name).__name__}")
        if not name.strip():
            raise ValueError("column name must not be empty or whitespace")
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

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        return f"Column({self.ktype!r}, {self.name!r})"


def _flatten(other: Any) -> list[Column]:
    if isinstance(other, Column):
        return [other]
    if isinstance(other, _ColumnarView):
        return _flatten(other.get())
    if isinstance(other, Schema):
        return list(other)
    if isinstance(other, Sequence) and not isinstance(other, str):
        return [c for item in other for c in _flatten(item)]
    raise TypeError(f"cannot append {type(other).__name__} to a schema")


class _Columnar:
    """Operations shared by schemas: each returns a lazy view (``.get()`` materialises)."""

    def _cols(self) -> list[Column]:
        raise NotImplementedError

    def __getitem__(self, slicing: Any) -> _ColumnarView:
        cols = self._cols()
        names = [c.name for c in cols]

        def pick(key: Any) -> Column:
            if isinstance(key, str):
                if key not in names:
                    raise KeyError(key)
                return cols[names.index(key)]
            return cols[key]

        if isinstance(slicing, str | int):
            column = pick(slicing)
            return _ColumnarView(lambda: column)
        picked = cols[slicing] if isinstance(slicing, slice) else [pick(k) for k in slicing]
        return _ColumnarView(lambda: Schema.from_columns(picked))

    def insert(self, other: Any, at: int) -> _ColumnarView:
        cols = self._cols()
        merged = cols[:at] + _flatten(other) + cols[at:]
        return _ColumnarView(lambda: Schema.from_columns(merged))

    def remove(self, slicing: Any) -> _ColumnarView:
        drop = [slicing] if isinstance(slicing, str | int) else list(slicing)
        keep = [c for i, c in enumerate(self._cols()) if c.name not in drop and i not in drop]
        return _ColumnarView(lambda: Schema.from_columns(keep))

    def append(self, other: Any) -> _ColumnarView:
        merged = self._cols() + _flatten(other)
        return _ColumnarView(lambda: Schema.from_columns(merged))


class _ColumnarView:
    """A lazy result. ``view == x`` compares ``view.get()`` with x; iterating yields views."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make

    def get(self) -> Any:
        return self._make()

    def __eq__(self, other: object) -> bool:
        return self.get() == other

    __hash__ = None  # type: ignore[assignment]

    def __getitem__(self, slicing: Any) -> _ColumnarView:
        return self.get()[slicing]

    def __iter__(self) -> Iterator[_ColumnarView]:
        target = self.get()
        if isinstance(target, Column):
            raise TypeError("a column view is not iterable")
        return (target[i] for i in range(target.num_columns))

    def append(self, other: Any) -> _ColumnarView:
        return self.get().append(other)

    def insert(self, other: Any, at: int) -> _ColumnarView:
        return self.get().insert(other, at)

    def remove(self, slicing: Any) -> _ColumnarView:
        return self.get().remove(slicing)

    def __repr__(self) -> str:
        return f"View({self.get()!r})"


class Schema(_Columnar, PortObjectSpec):
    """The columns of a table: ``Schema(ktypes, names, metadata=None)``."""

    def __init__(
        self, ktypes: Sequence[Any], names: Sequence[str], metadata: Sequence[Any] | None = None
    ) -> None:
        if len(ktypes) != len(names):
            raise ValueError("ktypes and names must have the same length")
        metadata = list(metadata) if metadata is not None else [None] * len(names)
        self._columns = [Column(t, n, m) for t, n, m in zip(ktypes, names, metadata, strict=True)]

    def _cols(self) -> list[Column]:
        return list(self._columns)

    @classmethod
    def from_columns(cls, columns: Column | Sequence[Column]) -> Schema:
        columns = [columns] if isinstance(columns, Column) else list(columns)
        return cls(
            [c.ktype for c in columns], [c.name for c in columns], [c.metadata for c in columns]
        )

    @classmethod
    def from_types(
        cls, ktypes: Sequence[Any], names: Sequence[str], metadata: Sequence[Any] | None = None
    ) -> Schema:
        return cls(ktypes, names, metadata)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self._columns]

    @property
    def num_columns(self) -> int:
        return len(self._columns)

    def __iter__(self) -> Iterator[Column]:
        return iter(self._columns)

    def __contains__(self, key: object) -> bool:
        return key in self.column_names

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._columns == other._columns

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Schema({self._columns!r})"

    def serialize(self) -> dict:
        """As sent to KNIME (RowKey first); duplicate names raise RuntimeError here."""
        names = self.column_names
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise RuntimeError(f"duplicate column names: {dupes}")
        cols = [{"name": ROW_KEY, "type": "RowKey", "metadata": None}]
        cols += [
            {"name": c.name, "type": _type_to_dict(c.ktype), "metadata": c.metadata}
            for c in self._columns
        ]
        return {"columns": cols}

    @classmethod
    def deserialize(cls, table_schema: dict) -> Schema:
        cols = [c for c in table_schema["columns"] if c["type"] != "RowKey"]
        return cls(
            [_type_from_dict(c["type"]) for c in cols],
            [c["name"] for c in cols],
            [c["metadata"] for c in cols],
        )
