"""Stand-in behaviour that the behaviour facts (standin_checks.py) do not cover: decorators,
parameter groups, pandas round trips, and the public namespace."""

from __future__ import annotations

import knime.extension as knext
import pandas as pd
import pytest
from knime.extension import nodes as kn
from knime.extension import parameter as kp
from knime.types.chemistry import SmilesValue

# Names the stand-in once exported but the real knime.extension does not (fact sheet,
# meta "not_in_knime.extension"): a node using one would pass here and fail in KNIME.
NOT_PUBLIC = (
    "REGISTRY",
    "Credential",
    "extract_parameters",
    "inject_parameters",
    "validate_parameters",
    "validate_specs",
    "register_logical_class",
)


def test_backend_only_names_are_not_public() -> None:
    for name in NOT_PUBLIC:
        assert not hasattr(knext, name), name
    assert set(knext.__all__) == {n for n in dir(knext) if not n.startswith("_")} - {
        "nodes",
        "parameter",
        "version",
    }


@knext.parameter_group(label="Output")
class OutputGroup:
    column = knext.StringParameter("Column", "name", "Description")

    def validate(self, values: dict) -> None:
        if not values["column"]:
            raise ValueError("empty column name")


_declared: dict[str, object] = {}


def _declare(node_id: str) -> object:
    @knext.node("Demo", knext.NodeType.PREDICTOR, "icons/x.png", "/community", id=node_id)
    @knext.input_table("Molecules", "in")
    @knext.input_port("Model", "the model", knext.PortType("m", "m", object, object))
    @knext.output_table("Annotated", "out")
    class Demo:
        """One-line summary.

        Longer **Markdown** text.
        """

        count = knext.IntParameter("Count", "n", 3, min_value=1, max_value=10)
        output = OutputGroup()

        def configure(self, ctx: object, *specs: object) -> object:
            return specs[0]

    return Demo


def test_decorators_register_ports_in_source_order_and_docs() -> None:
    factory = _declare("standin-ports")
    info = kn._nodes["standin-ports"]
    assert [p.name for p in info.input_ports] == ["Molecules", "Model"]
    assert info.short_description == "One-line summary."
    assert "Markdown" in info.full_description
    assert [p.name for p in factory().output_ports] == ["Annotated"]
    with pytest.raises(ValueError):  # stricter than KNIME, which silently replaces
        _declare("standin-ports")


def test_parameter_groups_are_per_instance_and_validated() -> None:
    factory = _declare("standin-groups")
    a, b = factory(), factory()
    a.output.column = "Desc"
    assert a.output.column == "Desc" and b.output.column == "Description"
    with pytest.raises(AttributeError):
        a.output = None
    saved = kp.extract_parameters(a)
    assert saved["model"] == {"count": 3, "output": {"column": "Desc"}}
    c = factory()
    kp.inject_parameters(c, saved, "0.1.0")
    assert c.output.column == "Desc"
    saved["model"]["output"]["column"] = ""
    with pytest.raises(ValueError, match="empty column"):
        kp.validate_parameters(factory(), saved, "0.1.0")


def test_parameters_in_init_are_rejected() -> None:
    class Bad:
        """Bad."""

        def __init__(self) -> None:
            self.count = knext.IntParameter("Count", "n", 1)

    with pytest.raises(AttributeError):
        knext.node("Bad", knext.NodeType.OTHER, "icons/x.png", "/community", id="standin-bad")(Bad)


def test_pandas_round_trip_missing_value_rules() -> None:
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


def test_string_choices_are_offered_by_the_dialog() -> None:
    """``StringParameter(choices=callable)``: the dialog's schema offers what the callable
    returns for the dialog context (e.g. the credentials flow variables' names) as ``oneOf``,
    as KNIME 5.5 does; without a context there is no list, and saved values are not checked."""

    class Holder:
        name = knext.StringParameter(
            "Credentials", "c", "", choices=lambda ctx: ctx.get_credential_names()
        )

    class Java:
        def get_credential_names(self) -> list[str]:
            return ["db", "server"]

    ctx = knext.DialogCreationContext(Java(), {}, lambda s: s)
    prop = kp.extract_schema(Holder(), "0.1.0", ctx)["properties"]["model"]["properties"]["name"]
    assert prop["oneOf"] == [{"const": "db", "title": "db"}, {"const": "server", "title": "server"}]
    plain = kp.extract_schema(Holder(), "0.1.0")["properties"]["model"]["properties"]["name"]
    assert "oneOf" not in plain
    kp.validate_parameters(Holder(), {"model": {"name": "elsewhere"}}, "0.1.0")
    with pytest.raises(TypeError):
        knext.StringParameter("x", "y", "", choices=["a"])  # static lists: KNIME 5.8+
