"""Stand-in of ``knime.extension`` (tests only; see tests/knime_standin/README.md)."""

from knime.extension._nodes import (
    REGISTRY,
    ConfigurationContext,
    Credential,
    ExecutionContext,
    InvalidParametersError,
    NodeType,
    PortObject,
    PortObjectSpec,
    PortType,
    category,
    input_port,
    input_table,
    node,
    output_port,
    output_table,
    port_type,
)
from knime.extension._params import (
    BoolParameter,
    ColumnParameter,
    DoubleParameter,
    EnumParameter,
    EnumParameterOptions,
    IntParameter,
    MultiColumnParameter,
    MultilineStringParameter,
    StringParameter,
    extract_parameters,
    inject_parameters,
    parameter_group,
    validate_parameters,
)
from knime.extension._table import BatchOutputTable, Table, register_logical_class
from knime.extension._types import (
    Column,
    KnimeType,
    Schema,
    blob,
    bool_,
    double,
    int32,
    int64,
    list_,
    logical,
    null,
    string,
)


def _register_chemistry() -> None:
    from knime.types.chemistry import SmilesAdapterValue, SmilesValue

    register_logical_class(SmilesValue)
    register_logical_class(SmilesAdapterValue)


_register_chemistry()

__all__ = [
    "REGISTRY",
    "BatchOutputTable",
    "BoolParameter",
    "Column",
    "ColumnParameter",
    "ConfigurationContext",
    "Credential",
    "DoubleParameter",
    "EnumParameter",
    "EnumParameterOptions",
    "ExecutionContext",
    "IntParameter",
    "InvalidParametersError",
    "KnimeType",
    "MultiColumnParameter",
    "MultilineStringParameter",
    "NodeType",
    "PortObject",
    "PortObjectSpec",
    "PortType",
    "Schema",
    "StringParameter",
    "Table",
    "blob",
    "bool_",
    "category",
    "double",
    "extract_parameters",
    "inject_parameters",
    "input_port",
    "input_table",
    "int32",
    "int64",
    "list_",
    "logical",
    "node",
    "null",
    "output_port",
    "output_table",
    "parameter_group",
    "port_type",
    "string",
    "validate_parameters",
]
