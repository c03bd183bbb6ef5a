"""The stand-in reproduces the behaviour facts of the real ``knime.extension``: one check per
fact id of ``../shared/spec/knime_extension_api.json`` (``behaviours``).

The checks need no fact sheet: ``test_standin_facts.py`` runs them all in CI, and
``test_conformance.py`` runs each for its fact id when the sheet is present. Facts the
stand-in does not reproduce are listed, with the reason, in ``NOT_REPRODUCED``.
"""

from __future__ import annotations

import fractions
import re
from collections.abc import Callable
from typing import Any

import knime.extension as knext
import pandas as pd
import pyarrow as pa
import pytest
from knime._arrow import _table as kat
from knime.api import schema as ks
from knime.extension import nodes as kn
from knime.extension import parameter as kp
from knime.extension.version import Version
from knime.types.chemistry import SmilesAdapterValue, SmilesValue

from . import harness

STANDIN_CHECKS: dict[str, Callable[[], None]] = {}

#: fact id -> why the stand-in does not reproduce it
NOT_REPRODUCED = {
    "optional_inputs": "no LLaMo node has an optional input port",
    "node_id_java": "Java combines the ids; node_checks keeps our ids explicit and unchanged",
    "icons": "Java resolves icon paths; node_checks checks the icon files",
    "knime_yml": "Java reads knime.yml; the harness imports the extension from it and "
    "node_checks checks what it names",
    "testing_module": "the tests use this stand-in, not knime.extension.testing",
}


def fact(fact_id: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(check: Callable[[], None]) -> Callable[[], None]:
        STANDIN_CHECKS[fact_id] = check
        return check

    return register


# ------------------------------------------------------------------------- demo nodes
class DemoSpec(knext.PortObjectSpec):
    def __init__(self, name: str = "demo") -> None:
        self.name = name

    def serialize(self) -> dict:
        return {"name": self.name}

    @classmethod
    def deserialize(cls, data: dict) -> DemoSpec:  # one argument: needs the backend's retry
        return cls(data["name"])


class DemoObject(knext.PortObject):
    def serialize(self) -> bytes:
        return b""

    @classmethod
    def deserialize(cls, spec: DemoSpec, storage: bytes) -> DemoObject:
        return cls(spec)


DEMO_PORT = knext.port_type("Demo model", DemoObject, DemoSpec, id="test.demo-model")


class Opts(knext.EnumParameterOptions):
    KEEP = ("Keep", "keep the rows")
    FAIL = ("Fail", "fail at the first bad row")


_demos: dict[int, Any] = {}


def demo_node(port_index: int) -> Any:
    """A node behind a model port (input 0) with a table (input 1), like the LLaMo nodes;
    its column parameter looks at input ``port_index``."""
    if port_index in _demos:
        return _demos[port_index]

    @knext.node(
        "Demo", knext.NodeType.PREDICTOR, "icons/qa.png", "/community", id=f"demo-{port_index}"
    )
    @knext.input_port("Model", "the model", DEMO_PORT)
    @knext.input_table("Table", "the table")
    @knext.output_table("Out", "the table plus a column")
    class Demo:
        """A demo node."""

        column = knext.ColumnParameter(
            "Column",
            "a string column",
            port_index=port_index,
            column_filter=lambda c: c.ktype == knext.string(),
            include_none_column=True,
        )
        mode = knext.EnumParameter("Mode", "what to do", Opts.KEEP.name, Opts)

        def configure(self, ctx: Any, spec: Any, schema: Any) -> Any:
            if self.column is None:
                self.column = schema.column_names[0]  # auto-configure
            return schema.append(knext.Column(knext.string(), "extra"))  # a view

        def execute(self, ctx: Any, model: Any, table: Any) -> Any:
            ctx.set_warning(f"column={self.column}")
            data = table.to_pyarrow()
            return knext.Table.from_pyarrow(
                data.append_column("extra", pa.array(["x"] * data.num_rows, pa.string()))
            )

    _demos[port_index] = Demo
    return Demo


def demo_table(rows: int = 3) -> Any:
    smiles = ([SmilesValue("CCO"), None, SmilesValue("c1ccccc1")] * rows)[:rows]
    frame = pd.DataFrame(
        {
            "name": [f"m{i}" for i in range(rows)],
            "smiles": pd.Series(smiles, dtype=object),  # pandas would make plain strings
            "x": [1.0] * rows,
        }
    )
    return knext.Table.from_pandas(frame)


def input_specs() -> list[Any]:
    """[model spec, table spec] as a node behind a model port receives them."""
    spec, _ = harness._receive(demo_node(1)().input_ports[1], demo_table())
    return [DemoSpec(), spec]


# ------------------------------------------------------------------------------ checks
@fact("configure.validate_specs")
def _validate_specs() -> None:
    kp.validate_specs(demo_node(1)(), input_specs())
    with pytest.raises(TypeError, match="port at index 0 is not a table"):
        kp.validate_specs(demo_node(0)(), input_specs())
    harness.run(demo_node(1), DemoObject(DemoSpec()), demo_table())
    trace = harness.TRACE
    assert trace.index("validate_specs") < trace.index("configure")
    with pytest.raises(TypeError, match="not a table"):
        harness.run(demo_node(0), DemoObject(DemoSpec()), demo_table())


@fact("dialog.column_choices")
def _column_choices() -> None:
    saved = kp.extract_parameters(demo_node(1)())
    _, ui, _ = harness.dialog(demo_node(1), input_specs(), saved)
    options = ui["elements"][0]["options"]
    assert [v["id"] for v in options["possibleValues"]] == ["name", "<none>"]  # filtered
    assert options["possibleValues"][0]["type"]["id"] == "org.knime.core.data.StringValue"
    with pytest.raises(TypeError, match="not a table"):
        harness.dialog(demo_node(0), input_specs(), saved)
    no_metadata = [DemoSpec(), knext.Schema([knext.string()], ["name"])]
    with pytest.raises(TypeError):  # KNIME injects the metadata the choices read
        harness.dialog(demo_node(1), no_metadata, saved)


@fact("column.none_value")
def _none_value() -> None:
    assert knext.ColumnParameter.NONE == "<none>"
    node = demo_node(1)()
    assert node.column is None
    assert kp.extract_parameters(node)["model"]["column"] == ""
    for saved, value in (("", None), ("<none>", "<none>"), ("name", "name")):
        node = demo_node(1)()
        kp.inject_parameters(node, {"model": {"column": saved, "mode": "KEEP"}}, "0.1.0")
        assert node.column == value


@fact("enum.value_form")
def _enum_value_form() -> None:
    node = demo_node(1)()
    assert node.mode == "KEEP" and Opts.get_all_options() == ["KEEP", "FAIL"]
    node.mode = "FAIL"
    with pytest.raises(ValueError):
        node.mode = Opts.FAIL  # a member, not its name
    with pytest.raises(ValueError):
        node.mode = "SKIP"

    class Holder:
        mode = knext.EnumParameter("Mode", "m", Opts.FAIL, Opts)  # not converted

    assert Holder().mode is Opts.FAIL


@fact("enum.default_missing_bug")
def _enum_default() -> None:
    with pytest.raises(AttributeError):
        knext.EnumParameter("Mode", "m", enum=Opts)


@fact("enum.style")
def _enum_style() -> None:
    style = knext.EnumParameter.Style
    assert (style.RADIO.value, style.VALUE_SWITCH.value, style.DROPDOWN.value) == (
        "radio",
        "valueSwitch",
        "string",
    )


@fact("enum.validator")
def _enum_validator() -> None:
    with pytest.raises(AttributeError):
        knext.EnumParameter("Mode", "m", "KEEP", Opts, validator=lambda v: None)

    class Holder:
        mode = knext.EnumParameter("Mode", "m", "KEEP", Opts)

        @mode.validator
        def no_fail(value: str) -> None:  # noqa: N805 (KNIME calls it with the value)
            if value == "FAIL":
                raise ValueError("no")

    holder = Holder()
    with pytest.raises(ValueError):
        holder.mode = "FAIL"  # the decorated validator
    with pytest.raises(ValueError):
        holder.mode = "SKIP"  # and still the default check


@fact("param.validator_decorator")
def _validator_decorator() -> None:
    class Holder:
        count = knext.IntParameter("Count", "n", 1, min_value=0)

        @count.validator
        def anything(value: Any) -> None:  # noqa: N805 (KNIME calls it with the value)
            pass

    assert Holder.__dict__["anything"] is None  # the decorator returns None
    holder = Holder()
    holder.count = -5  # the default range check is replaced
    assert holder.count == -5


@fact("param.types")
def _types() -> None:
    class Holder:
        count = knext.IntParameter("Count", "n", 1)
        ratio = knext.DoubleParameter("Ratio", "r", 0.5)
        text = knext.StringParameter("Text", "t", "a")
        flag = knext.BoolParameter("Flag", "f", False)

    holder = Holder()
    holder.count = True  # bool is an int
    holder.ratio = fractions.Fraction(1, 3)  # any number
    for name, bad in (("count", 1.5), ("text", 1), ("flag", 1)):
        with pytest.raises(TypeError):
            setattr(holder, name, bad)


@fact("param.lazy_defaults")
def _lazy_defaults() -> None:
    node = demo_node(1)()
    assert "__parameters__" not in vars(node) or "mode" not in node.__parameters__
    assert node.mode == "KEEP" and node.__parameters__["mode"] == "KEEP"
    with pytest.raises(ValueError):
        node.mode = "nope"  # assignment validates
    assert node.mode == "KEEP"


@fact("param.versions")
def _versions() -> None:
    class Holder:
        old = knext.StringParameter("Old", "o", "a")
        new = knext.StringParameter("New", "n", "b", since_version="0.2.0")

    holder = Holder()
    assert set(kp.extract_parameters(holder)["model"]) == {"old", "new"}  # no version filter
    fresh = Holder()
    fresh.new = "changed"
    kp.inject_parameters(fresh, {"model": {}}, "0.1.0")
    assert fresh.new == "b" and fresh.old == "a"  # newer: default; older: silently skipped
    kp.validate_parameters(Holder(), {"model": {"old": "x"}}, "0.1.0")
    with pytest.raises(ValueError, match=re.escape('Parameter missing for key "new".')):
        kp.validate_parameters(Holder(), {"model": {"old": "x"}}, "0.2.0")
    with pytest.raises(ValueError, match=re.escape('Parameter missing for key "old".')):
        kp.validate_parameters(Holder(), {"model": {"new": "x"}}, "0.1.0")
    schema = kp.extract_schema(holder, "0.1.0")
    assert set(schema["properties"]["model"]["properties"]) == {"old"}


@fact("param.extension_version")
def _extension_version() -> None:
    class Holder:
        text = knext.StringParameter("Text", "t", lambda version: f"v{version.minor}")

    saved = kp._extension_version
    try:
        kp._extension_version = None  # the backend imports the module before setting it
        with pytest.raises(RuntimeError, match="extension version has not been set"):
            _ = Holder().text
        kp.set_extension_version("0.3.0")
        assert Holder().text == "v3"
    finally:
        kp._extension_version = saved
    assert Version.parse_version(None) == (0, 0, 0)
    for bad in ("1.0", "1.0.x", "-1.0.0"):
        with pytest.raises(ValueError):
            Version.parse_version(bad)


@fact("settings.autoconfigure")
def _autoconfigure() -> None:
    java = harness.JavaSide()
    harness.run(demo_node(1), DemoObject(DemoSpec()), demo_table(), java=java)
    assert java.warnings == ["column=name"]  # picked in configure, seen by execute


@fact("configure.returns")
def _configure_returns() -> None:
    out = harness.run(demo_node(1), DemoObject(DemoSpec()), demo_table())  # configure: a view
    assert out.column_names == ["name", "smiles", "x", "extra"]
    port = kn.Port(DEMO_PORT, "m", "d")
    with pytest.raises(AssertionError):
        harness._send_spec(port, knext.Schema([], []))  # not the port's spec class
    table_port = demo_node(1)().output_ports[0]
    column = knext.Column(knext.string(), "only")
    assert knext.Schema.deserialize(harness._send_spec(table_port, column)).column_names == ["only"]


@fact("schema.serialize")
def _schema_serialize() -> None:
    data = knext.Schema([knext.string(), knext.double()], ["a", "b"]).serialize()
    assert [c["name"] for c in data["columns"]] == ["<RowID>", "a", "b"]
    with pytest.raises(RuntimeError, match="duplicate"):
        knext.Schema([knext.string(), knext.double()], ["a", "a"]).serialize()


@fact("schema.equality")
def _schema_equality() -> None:
    schema = knext.Schema([knext.string()], ["a"])
    view = schema.append([])
    assert view == schema and (schema == view) is False and schema == view.get()
    assert not hasattr(schema, "__len__")
    assert isinstance(schema["a"].get(), knext.Column)
    assert all(isinstance(c, ks._ColumnarView) for c in schema[:])
    assert all(isinstance(c, knext.Column) for c in schema)
    assert knext.Column(knext.string(), "a", None) != knext.Column(knext.string(), "a", {})


@fact("schema.constructor")
def _schema_constructor() -> None:
    column = knext.Column(knext.string(), "a")
    with pytest.raises(TypeError):
        knext.Schema([column])  # ktypes and names, not columns
    assert knext.Schema.from_columns(column).column_names == ["a"]
    assert knext.Schema.from_types([knext.double()], ["b"]).column_names == ["b"]


@fact("column.rules")
def _column_rules() -> None:
    assert knext.Column(SmilesValue, "s").ktype == knext.logical(SmilesValue)
    with pytest.raises(TypeError):
        knext.Column(complex, "c")  # not a registered value type
    with pytest.raises(TypeError):
        knext.Column(knext.string(), 1)
    for blank in ("", "  "):
        with pytest.raises(ValueError):
            knext.Column(knext.string(), blank)


@fact("types.equality")
def _types_equality() -> None:
    assert knext.string() is knext.string()
    assert knext.string(knext.DictEncodingKeyType.INT) != knext.string()
    smiles, adapter = knext.logical(SmilesValue), knext.logical(SmilesAdapterValue)
    assert smiles != adapter and smiles != knext.string() and adapter != knext.string()
    assert knext.logical(SmilesValue) == smiles


@fact("table.factories")
def _table_factories() -> None:
    with pytest.raises(RuntimeError):
        knext.Table()
    with pytest.raises((RuntimeError, TypeError)):
        knext.BatchOutputTable()
    data = pa.table({"<RowID>": ["r1", "r2"], "x": [1, 2]})
    assert knext.Table.from_pyarrow(data).to_pandas().index.tolist() == ["r1", "r2"]
    ints = pa.table({"<RowID>": [5, 6], "x": [1, 2]})
    assert knext.Table.from_pyarrow(ints).to_pandas().index.tolist() == ["Row5", "Row6"]
    plain = pa.table({"x": [1, 2]})
    assert knext.Table.from_pyarrow(plain).to_pandas().index.tolist() == ["Row0", "Row1"]
    uneven = pa.Table.from_batches([pa.record_batch({"x": [1]}), pa.record_batch({"x": [2, 3]})])
    with pytest.raises(ValueError, match="first batch's size"):
        knext.Table.from_pyarrow(uneven)


@fact("table.read")
def _table_read() -> None:
    table = kat._make_source_table(demo_table(3).to_pyarrow(), 2)
    batches = list(table.batches())
    assert [b.num_rows for b in batches] == [2, 1]
    first = batches[0].to_pyarrow()
    assert isinstance(first, pa.RecordBatch) and first.schema.names[0] == "<RowID>"
    smiles = first.column(first.schema.get_field_index("smiles"))
    assert isinstance(smiles, pa.ExtensionArray)
    values = smiles.to_pylist()
    assert type(values[0]) is SmilesValue and values[1] is None
    assert isinstance(table.to_pyarrow(), pa.Table)


@fact("table.batches")
def _table_batches() -> None:
    with pytest.raises(RuntimeError):
        list(demo_table().batches())  # not an input table
    table = kat._make_source_table(demo_table(3).to_pyarrow(), 2)
    assert table.num_batches == 2


@fact("batch_output")
def _batch_output() -> None:
    with pytest.raises(ValueError):
        knext.BatchOutputTable.create(row_ids="auto")
    out = knext.BatchOutputTable.create()
    with pytest.raises(TypeError):
        out.append([1, 2])

    def sizes(*ns: int) -> None:
        out = knext.BatchOutputTable.create(row_ids="generate")
        for n in ns:
            out.append(pa.record_batch({"x": list(range(n))}))

    sizes(4, 4, 2)
    sizes(0)
    for bad in ((4, 5), (4, 2, 2), (4, 2, 4)):
        with pytest.raises(ValueError):
            sizes(*bad)
    out = knext.BatchOutputTable.create(row_ids="generate")
    out.append(pa.table({"x": pa.array([], pa.int64())}))  # an empty table: one empty batch
    assert len(out._sink.batches) == 1
    with pytest.raises(ValueError, match="schema"):
        out.append(pa.table({"y": ["a"]}))


@fact("execute.outputs")
def _execute_outputs() -> None:
    table_port = demo_node(1)().output_ports[0]
    configured = knext.Schema([knext.double()], ["x"]).serialize()
    with pytest.raises(TypeError, match="must be a Table or BatchOutputTable"):
        harness._check_output(table_port, pd.DataFrame({"x": [1.0]}), configured)
    with pytest.raises(RuntimeError, match="Canceled"):  # canceled at the end: outputs dropped
        harness.run(
            demo_node(1),
            DemoObject(DemoSpec()),
            demo_table(),
            java=harness.JavaSide(cancel_after=0),
        )


@fact("errors")
def _errors() -> None:
    error = knext.InvalidParametersError("bad setting")
    assert isinstance(error, Exception) and str(error) == "bad setting"


@fact("ctx.progress")
def _progress() -> None:
    java = harness.JavaSide()
    ctx = knext.ExecutionContext(java, {})
    ctx.set_progress(1)
    ctx.set_progress(True)
    ctx.set_progress(1.00005, "done")
    assert java.progress == [(1.0, None), (1.0, None), (1.0, "done")]
    with pytest.raises(TypeError):
        ctx.set_progress("0.5")
    with pytest.raises(ValueError):
        ctx.set_progress(1.01)
    with pytest.raises(TypeError):
        ctx.set_progress(0.5, 3)


@fact("ctx.flow_variables")
def _flow_variables() -> None:
    ctx = knext.ConfigurationContext(harness.JavaSide(), {"a": 1})
    ctx.flow_variables["b"] = object()  # types are checked only when returned to Java
    with pytest.raises(TypeError):
        ctx.flow_variables[1] = 1
    with pytest.raises(ValueError):
        ctx.flow_variables["knime.x"] = 1
    with pytest.raises(RuntimeError):
        del ctx.flow_variables["a"]


@fact("ctx.credentials")
def _credentials() -> None:
    assert not hasattr(knext, "Credential")

    class Java(harness.JavaSide):
        def get_credentials(self, identifier: str) -> tuple[str, str]:
            if identifier != "db":
                raise KeyError(identifier)
            return ("user", "secret")

    ctx = knext.ConfigurationContext(Java(), {})
    assert ctx.get_credentials("db") == kn.Credential("user", "secret", "db")
    with pytest.raises(KeyError):
        ctx.get_credentials("other")


@fact("ports.custom")
def _ports_custom() -> None:
    class Incomplete(knext.PortObjectSpec):
        def serialize(self) -> dict:
            return {}

    with pytest.raises(TypeError):
        Incomplete()  # deserialize is abstract
    spec, obj = harness._receive(kn.Port(DEMO_PORT, "m", "d"), DemoObject(DemoSpec("x")))
    assert spec.name == "x" and isinstance(obj, DemoObject)  # via the (data) retry

    class Sub(DemoSpec):
        pass

    class SubObject(DemoObject):
        pass

    sub = kn.PortType("sub", "Sub", SubObject, Sub)
    assert DEMO_PORT.is_super_type_of(sub) and not sub.is_super_type_of(DEMO_PORT)
    with pytest.raises(ValueError):
        knext.port_type("Again", DemoObject, DemoSpec, id="test.other")
