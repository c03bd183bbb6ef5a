"""The stand-in reproduces the KNIME behaviours the nodes rely on (spec/knime_api.md §4)."""

from __future__ import annotations

import knime.extension as knext
import pandas as pd
import pytest
from knime.extension import _table
from knime.types.chemistry import SmilesValue


class Opts(knext.EnumParameterOptions):
    MISSING = ("Output missing values", "bad rows get missing values")
    FAIL = ("Fail", "stop at the first bad row")


@knext.parameter_group(label="Output")
class OutputGroup:
    column = knext.StringParameter("Column", "name", "Description")

    def validate(self, values: dict) -> None:
        if not values["column"]:
            raise ValueError("empty column name")


def _declare(node_id: str):  # a fresh node class per test (ids are global)
    @knext.node("Demo", knext.NodeType.PREDICTOR, "icons/x.png", "/community", id=node_id)
    @knext.input_table("Molecules", "in")
    @knext.input_port("Model", "the model", knext.PortType("m", object, object, "m"))
    @knext.output_table("Annotated", "out")
    class Demo:
        """One-line summary.

        Longer **Markdown** text.
        """

        count = knext.IntParameter("Count", "n", 3, min_value=1, max_value=10)
        ratio = knext.DoubleParameter("Ratio", "r", 0.5)
        flag = knext.BoolParameter("Flag", "f", True)
        mode = knext.EnumParameter("Mode", "m", Opts.MISSING.name, Opts)
        smiles = knext.ColumnParameter("SMILES", "s")
        extra = knext.StringParameter("Extra", "added later", "x", since_version="0.2.0")
        output = OutputGroup()

        def configure(self, ctx, *specs):
            return specs[0]

    return Demo


def test_decorators_register_ports_in_source_order_and_docs() -> None:
    factory = _declare("demo_ports")
    info = knext.REGISTRY["demo_ports"]
    assert [p.name for p in info.inputs] == ["Molecules", "Model"]
    assert info.short_description == "One-line summary."
    assert "Markdown" in info.full_description
    node = factory()
    assert [p.name for p in node.output_ports] == ["Annotated"]
    with pytest.raises(ValueError):
        _declare("demo_ports")


def test_parameters_validate_and_are_per_instance() -> None:
    factory = _declare("demo_params")
    a, b = factory(), factory()
    assert a.count == 3 and a.smiles is None and a.mode == "MISSING"
    a.count = 5
    assert b.count == 3
    with pytest.raises(TypeError):
        a.count = 2.0
    with pytest.raises(ValueError):
        a.count = 11
    with pytest.raises(TypeError):
        a.flag = 1
    with pytest.raises(ValueError):
        a.mode = "SKIP"
    a.mode = Opts.FAIL
    assert a.mode == "FAIL"
    a.output.column = "Desc"
    assert a.output.column == "Desc" and b.output.column == "Description"
    with pytest.raises(AttributeError):
        a.output = None


def test_settings_round_trip_and_versions() -> None:
    factory = _declare("demo_settings")
    a = factory()
    a.count = 7
    saved = knext.extract_parameters(a, version="0.2.0")
    assert saved["model"]["count"] == 7 and saved["model"]["output"] == {"column": "Description"}
    b = factory()
    knext.inject_parameters(b, saved, "0.2.0")
    assert b.count == 7
    old = knext.extract_parameters(factory(), version="0.1.0")
    assert "extra" not in old["model"]
    c = factory()
    knext.inject_parameters(c, old, "0.1.0")  # newer parameter gets its default
    assert c.extra == "x"
    del old["model"]["count"]
    with pytest.raises(ValueError, match="Parameter missing for key count"):
        knext.inject_parameters(factory(), old, "0.1.0")
    bad = knext.extract_parameters(factory(), version="0.2.0")
    bad["model"]["output"]["column"] = ""
    with pytest.raises(ValueError, match="empty column"):
        knext.inject_parameters(factory(), bad, "0.2.0")


def test_table_round_trip_missing_value_rules() -> None:
    df = pd.DataFrame(
        {
            "s": ["a", None],
            "i": [1, None],
            "f": [0.5, None],
            "n": [None, None],
            "smi": pd.Series([SmilesValue("CCO"), None], dtype=object),
        }
    )
    table = knext.Table.from_pandas(df)
    types = {c.name: c.ktype for c in table.schema}
    assert types["s"] == knext.string() and types["n"] == knext.null()
    assert types["smi"] == knext.logical(SmilesValue) != knext.string()
    back = table.to_pandas()
    assert str(back["s"].dtype) == "string" and back["s"].iloc[1] is pd.NA
    assert back["i"].dtype == "float64" and pd.isna(back["i"].iloc[1])
    assert isinstance(back["smi"].iloc[0], SmilesValue) and back["smi"].iloc[1] is None
    assert list(back.index) == ["Row0", "Row1"]
    assert table.to_pyarrow().column_names[0] == "<RowID>"


def test_batches_and_batch_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_table, "BATCH_ROWS", 2)
    table = knext.Table.from_pandas(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    batches = list(table.batches())
    assert [b.num_rows for b in batches] == [2, 1]
    out = knext.BatchOutputTable.create()
    for b in batches:
        out.append(b.to_pandas())
    assert out.to_table().num_rows == 3
    with pytest.raises(ValueError, match="differs"):
        out.append(pd.DataFrame({"x": ["a"]}, index=["r9"]))


def test_contexts_record_progress_and_cancel() -> None:
    ctx = knext.ExecutionContext(cancel_after=2)
    ctx.set_progress(0.5, "half")
    with pytest.raises(ValueError):
        ctx.set_progress(1.5)
    with pytest.raises(TypeError):
        ctx.set_progress("0.5")
    assert [ctx.is_canceled() for _ in range(3)] == [False, False, True]
    with pytest.raises(ValueError):
        ctx.flow_variables["knime.x"] = 1
    assert ctx.progress == [(0.5, "half")]


def test_port_types_register_once_and_subtype() -> None:
    class Spec(knext.PortObjectSpec):
        pass

    class Obj(knext.PortObject):
        pass

    class SubSpec(Spec):
        pass

    class SubObj(Obj):
        pass

    base = knext.port_type("Base", Obj, Spec, id="test.base")
    sub = knext.port_type("Sub", SubObj, SubSpec, id="test.sub")
    assert base.is_super_type_of(sub) and not sub.is_super_type_of(base)
    with pytest.raises(ValueError):
        knext.port_type("Again", Obj, Spec, id="test.other")
