"""KNIME types <-> Arrow types and values (stand-in of the Arrow backend's type mapping).

Primitive columns are plain Arrow arrays (KNIME unwraps them in ``to_pyarrow``). Logical
columns such as SMILES stay extension arrays whose ``to_pylist()`` decodes to the value class
(``SmilesValue``; ``None`` for a missing cell), as in KNIME (fact ``table.read``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from knime.api import schema as ks

EXTENSION_NAME = "knime.logical_type"

_ARROW_OF = {
    ks.PrimitiveTypeId.INT: pa.int32(),
    ks.PrimitiveTypeId.LONG: pa.int64(),
    ks.PrimitiveTypeId.STRING: pa.string(),
    ks.PrimitiveTypeId.DOUBLE: pa.float64(),
    ks.PrimitiveTypeId.BOOL: pa.bool_(),
    ks.PrimitiveTypeId.BLOB: pa.binary(),
    ks.PrimitiveTypeId.NULL: pa.null(),
}

# What KNIME injects as column metadata of input specs (read by the dialog's column choices).
_VALUE_CLASS_OF = {
    ks.PrimitiveTypeId.INT: ("org.knime.core.data.IntValue", "Number (Integer)"),
    ks.PrimitiveTypeId.LONG: ("org.knime.core.data.LongValue", "Number (Long)"),
    ks.PrimitiveTypeId.STRING: ("org.knime.core.data.StringValue", "String"),
    ks.PrimitiveTypeId.DOUBLE: ("org.knime.core.data.DoubleValue", "Number (Float)"),
    ks.PrimitiveTypeId.BOOL: ("org.knime.core.data.BooleanValue", "Boolean"),
}


class LogicalExtensionType(pa.ExtensionType):
    """The Arrow type of a logical column: the logical type's JSON over its storage type."""

    def __init__(self, logical_type: str, storage_type: pa.DataType) -> None:
        self.logical_type = logical_type
        super().__init__(storage_type, EXTENSION_NAME)

    def __arrow_ext_serialize__(self) -> bytes:
        return self.logical_type.encode()

    @classmethod
    def __arrow_ext_deserialize__(
        cls, storage_type: pa.DataType, serialized: bytes
    ) -> LogicalExtensionType:
        return cls(serialized.decode(), storage_type)

    def __arrow_ext_class__(self) -> type:
        return LogicalExtensionArray


class LogicalExtensionArray(pa.ExtensionArray):
    """``to_pylist()`` decodes cells to the registered value class."""

    def to_pylist(self, *args: Any, **kwargs: Any) -> list[Any]:
        value_type = ks.LogicalType(self.type.logical_type, ks.null()).value_type
        out = []
        for cell in self.storage.to_pylist():
            if cell is None:
                out.append(None)
            elif isinstance(cell, dict):  # adapter storage {"0": value, "1": adapters}
                out.append(value_type(cell["0"], cell["1"]))
            else:
                out.append(value_type(cell))
        return out


def to_arrow_type(ktype: ks.KnimeType) -> pa.DataType:
    if isinstance(ktype, ks.PrimitiveType):
        return _ARROW_OF[ktype._type_id]
    if isinstance(ktype, ks.ListType):
        return pa.list_(to_arrow_type(ktype.inner_type))
    if isinstance(ktype, ks.StructType):
        return pa.struct([(str(i), to_arrow_type(t)) for i, t in enumerate(ktype.inner_types)])
    if isinstance(ktype, ks.LogicalType):
        return LogicalExtensionType(ktype.logical_type, to_arrow_type(ktype.storage_type))
    raise TypeError(f"not a KNIME type: {ktype!r}")


def from_arrow_type(arrow_type: pa.DataType) -> ks.KnimeType:
    if isinstance(arrow_type, LogicalExtensionType):
        return ks.LogicalType(arrow_type.logical_type, from_arrow_type(arrow_type.storage_type))
    for type_id, candidate in _ARROW_OF.items():
        if arrow_type == candidate:
            return ks.PrimitiveType(type_id)
    if pa.types.is_large_string(arrow_type):
        return ks.string()
    if pa.types.is_integer(arrow_type):
        return ks.int64()
    if pa.types.is_floating(arrow_type):
        return ks.double()
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return ks.list_(from_arrow_type(arrow_type.value_type))
    if pa.types.is_struct(arrow_type):
        return ks.struct(
            *(from_arrow_type(arrow_type.field(i).type) for i in range(arrow_type.num_fields))
        )
    return ks.blob()


def encode(values: Sequence[Any], ktype: ks.KnimeType) -> pa.Array:
    """Python values as an Arrow array of ``ktype`` (logical values via their storage)."""
    if not isinstance(ktype, ks.LogicalType):
        return pa.array(list(values), type=to_arrow_type(ktype))
    ext = to_arrow_type(ktype)
    if isinstance(ktype.storage_type, ks.StructType):
        cells = [
            None if v is None else {"0": str(v), "1": getattr(v, "_adapters", None)} for v in values
        ]
    else:
        cells = [None if v is None else str(v) for v in values]
    return pa.ExtensionArray.from_storage(ext, pa.array(cells, type=ext.storage_type))


def knime_metadata(ktype: ks.KnimeType) -> dict[str, str]:
    """The column metadata KNIME adds to the columns of input specs."""
    if isinstance(ktype, ks.PrimitiveType) and ktype._type_id in _VALUE_CLASS_OF:
        preferred, shown = _VALUE_CLASS_OF[ktype._type_id]
    elif isinstance(ktype, ks.LogicalType) and ktype.value_type is not None:
        name = ktype.value_type.__name__
        preferred, shown = f"org.knime.types.{name}", name.removesuffix("Value")
    else:
        preferred, shown = "org.knime.core.data.DataValue", repr(ktype)
    return {"preferred_value_type": preferred, "displayed_column_type": shown}


def with_knime_metadata(schema: ks.Schema) -> ks.Schema:
    """``schema`` as KNIME hands it to Python: every column carries KNIME's metadata."""
    return ks.Schema(
        [c.ktype for c in schema],
        [c.name for c in schema],
        [knime_metadata(c.ktype) for c in schema],
    )
