"""Stand-in of ``knime.extension`` (tests only; see tests/knime_standin/README.md).

Exports only names that the real ``knime.extension`` exports, with the real parameters and
defaults (tests/nodes/test_conformance.py checks this against the fact sheet). What only the
backend uses (``extract_parameters``, ``validate_specs``, the node registry, ``Credential``)
lives in the submodules, as in KNIME.
"""

from knime.api.schema import (
    Column,
    DictEncodingKeyType,
    KnimeType,
    ListType,
    LogicalType,
    PortObjectSpec,
    PrimitiveType,
    PrimitiveTypeId,
    Schema,
    StructType,
    blob,
    bool_,
    double,
    int32,
    int64,
    list_,
    logical,
    null,
    string,
    struct,
)
from knime.api.table import BatchOutputTable, Table
from knime.extension.nodes import (
    ConfigurationContext,
    DialogCreationContext,
    ExecutionContext,
    InvalidParametersError,
    NodeType,
    Port,
    PortObject,
    PortType,
    category,
    input_port,
    input_table,
    node,
    output_port,
    output_table,
    port_type,
)
from knime.extension.parameter import (
    BoolParameter,
    ColumnParameter,
    DoubleParameter,
    EnumParameter,
    EnumParameterOptions,
    IntParameter,
    LayoutDirection,
    StringParameter,
    parameter_group,
)


def _register_chemistry_plugin() -> None:
    """What KNIME's chemistry types plugin registers (plugin.xml value factories)."""
    from knime.api import schema as ks
    from knime.types.chemistry import SmilesAdapterValue, SmilesValue

    ks._register_value_type(SmilesValue, "org.knime.chem.types.SmilesCellValueFactory", string())
    ks._register_value_type(
        SmilesAdapterValue,
        "org.knime.chem.types.SmilesAdapterCellValueFactory",
        struct(string(), string()),
    )


_register_chemistry_plugin()

__all__ = [
    "BatchOutputTable",
    "BoolParameter",
    "Column",
    "ColumnParameter",
    "ConfigurationContext",
    "DialogCreationContext",
    "DictEncodingKeyType",
    "DoubleParameter",
    "EnumParameter",
    "EnumParameterOptions",
    "ExecutionContext",
    "IntParameter",
    "InvalidParametersError",
    "KnimeType",
    "LayoutDirection",
    "ListType",
    "LogicalType",
    "NodeType",
    "Port",
    "PortObject",
    "PortObjectSpec",
    "PortType",
    "PrimitiveType",
    "PrimitiveTypeId",
    "Schema",
    "StringParameter",
    "StructType",
    "Table",
    "blob",
    "bool_",
    "category",
    "double",
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
    "struct",
]
