"""The LLaMo nodes obey the behaviour facts of the real ``knime.extension`` they depend on:
one check per fact id of ``../shared/spec/knime_extension_api.json`` (``behaviours``).

These are the regression tests of issue 14 (each failed on the nodes before it): they run
without the fact sheet in ``test_node_facts.py``, and per fact id in ``test_conformance.py``.
Only the execution check loads the model (the embedded one, on a 3-row table, once).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import knime.extension as knext
import pandas as pd
import pytest
from knime._arrow import _table as kat
from knime.extension import nodes as kn
from knime.extension import parameter as kp
from knime.extension.version import Version
from knime.types.chemistry import SmilesValue

from . import harness

NODE_CHECKS: dict[str, Callable[[], None]] = {}

NODE_IDS = (
    "llamo-model-selector",
    "llamo-description",
    "llamo-property",
    "llamo-iupac",
    "llamo-qa",
    "llamo-reaction",
)
#: the annotating nodes the embedded model serves (the reaction node needs a model trained
#: for reactions: tests/nodes/test_reaction.py)
ANNOTATING = NODE_IDS[1:5]
#: Parameters of version 0.1.0, per node: a parameter added later needs ``since_version``
#: (KNIME refuses settings saved before it without one: fact ``param.versions``).
PARAMETERS_0_1_0 = {
    "llamo-model-selector": {"source", "model_dir", "device"},
    # new in 0.2.0: no settings of 0.1.0 exist, so its first parameters need no since_version
    "llamo-reaction": {"smiles_column", "direction", "on_missing", "error_column", "model_column"},
    "llamo-description": {
        "smiles_column",
        "description_column",
        "nearest",
        "on_missing",
        "error_column",
        "model_column",
    },
    "llamo-property": {
        "smiles_column",
        "homo",
        "lumo",
        "gap",
        "add_ev",
        "on_missing",
        "error_column",
        "model_column",
    },
    "llamo-iupac": {
        "smiles_column",
        "name_column",
        "fallback",
        "on_missing",
        "error_column",
        "model_column",
    },
    "llamo-qa": {
        "smiles_column",
        "question",
        "question_column",
        "answer_column",
        "on_missing",
        "error_column",
        "model_column",
    },
}


def fact(fact_id: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(check: Callable[[], None]) -> Callable[[], None]:
        NODE_CHECKS[fact_id] = check
        return check

    return register


def factory(node_id: str) -> Any:
    return harness.registered_nodes()[node_id].factory


def molecules() -> Any:
    """A table as KNIME gives it: a SMILES-typed column, strings (one named like SMILES), a
    number and a question column."""
    return knext.Table.from_pandas(
        pd.DataFrame(
            {
                "name": ["ethanol", "benzene", "unknown"],
                "structure": pd.Series(
                    [SmilesValue("CCO"), SmilesValue("c1ccccc1"), None], dtype=object
                ),
                "smiles_note": ["from a file", "", None],
                "weight": [46.07, 78.11, None],
                "question": ["How many rings?", "What is the formula?", None],
            }
        )
    )


@functools.cache
def model() -> Any:
    harness.load_extension()
    return harness.run(factory("llamo-model-selector"))


def annotating_specs() -> list[Any]:
    """[model spec, table spec] as an annotating node receives them."""
    ports = harness.node_info(factory("llamo-description")).input_ports
    return [harness._receive(p, v)[0] for p, v in zip(ports, (model(), molecules()), strict=True)]


def column_controls(node_id: str) -> dict[str, list[str]]:
    """Column parameter -> the column names its dialog offers."""
    saved = kp.extract_parameters(factory(node_id)())
    _, ui, _ = harness.dialog(factory(node_id), annotating_specs(), saved)
    return {
        e["scope"].rsplit("/", 1)[1]: [v["id"] for v in e["options"]["possibleValues"]]
        for e in ui["elements"]
        if e["options"].get("format") == "columnSelection"
    }


def parameters(node_id: str) -> dict[str, Any]:
    return kp._parameters_of(type(factory(node_id)()))


# ------------------------------------------------------------------------------ checks
@fact("configure.validate_specs")
def _validate_specs() -> None:
    """Finding 1: column parameters must point at the table (input 1), not the model port."""
    for node_id in ANNOTATING:
        kp.validate_specs(factory(node_id)(), annotating_specs())
        configured = harness.configure(factory(node_id), model(), molecules())
        assert knext.Schema.deserialize(configured.sent[0]).column_names[:5] == [
            "name",
            "structure",
            "smiles_note",
            "weight",
            "question",
        ]


@fact("dialog.column_choices")
def _column_choices() -> None:
    """Finding 1 (dialog): each dialog opens and offers the table's columns."""
    for node_id in ANNOTATING:
        controls = column_controls(node_id)
        assert controls["smiles_column"] == ["name", "structure", "smiles_note", "question"]
    assert column_controls("llamo-qa")["question_column"][-1] == knext.ColumnParameter.NONE


@fact("column.none_value")
def _none_value() -> None:
    """Finding 2: "no question column" arrives as None, "" or "<none>"."""
    qa = factory("llamo-qa")
    for value in ("", knext.ColumnParameter.NONE):
        configured = harness.configure(
            qa, model(), molecules(), settings={"question_column": value}
        )
        assert "Answer" in knext.Schema.deserialize(configured.sent[0]).column_names
        with pytest.raises(knext.InvalidParametersError, match="give a question"):
            harness.configure(
                qa, model(), molecules(), settings={"question_column": value, "question": " "}
            )
    node = qa()
    kp.inject_parameters(node, {"model": {"question_column": None}}, harness.version())
    assert node.configure(knext.ConfigurationContext(harness.JavaSide(), {}), *annotating_specs())
    for node_id in ANNOTATING:  # an empty SMILES column setting means "pick one"
        configured = harness.configure(
            factory(node_id), model(), molecules(), settings={"smiles_column": ""}
        )
        assert configured.saved["model"]["smiles_column"] == "structure"


@fact("enum.value_form")
def _enum_value_form() -> None:
    """Enum values are member names: defaults are names, and nodes compare names."""
    for node_id in NODE_IDS:
        node = factory(node_id)()
        for name, p in parameters(node_id).items():
            if isinstance(p, knext.EnumParameter):
                assert getattr(node, name) in p._enum.get_all_options(), (node_id, name)


@fact("enum.default_missing_bug")
def _enum_defaults() -> None:
    for node_id in NODE_IDS:
        for name, p in parameters(node_id).items():
            if isinstance(p, knext.EnumParameter):
                assert isinstance(p._default_value, str), (node_id, name)


@fact("settings.autoconfigure")
def _autoconfigure() -> None:
    """The auto-picked SMILES column (the SMILES-typed one) is saved for execute."""
    for node_id in ANNOTATING:
        configured = harness.configure(factory(node_id), model(), molecules())
        assert configured.saved["model"]["smiles_column"] == "structure", node_id


@fact("configure.returns")
def _configure_returns() -> None:
    """Configure returns a Schema KNIME accepts, even when output names are taken."""
    taken = knext.Table.from_pandas(
        pd.DataFrame({"smiles": ["C"], "Description": ["x"], "LLaMo error": ["y"]})
    )
    for node_id in ANNOTATING:
        configured = harness.configure(factory(node_id), model(), taken)
        names = knext.Schema.deserialize(configured.sent[0]).column_names
        assert len(names) == len(set(names)), names
    spec = harness.configure(factory("llamo-model-selector")).sent[0]
    assert spec["source"] == "embedded"


@functools.cache
def _executed() -> tuple[Any, Any]:
    """The Description node run on 3 SMILES-typed rows stored in batches of 2."""
    old = harness.BATCH_ROWS
    harness.BATCH_ROWS = 2
    try:
        table = knext.Table.from_pandas(
            pd.DataFrame(
                {
                    "structure": pd.Series(
                        [SmilesValue("CCO"), None, SmilesValue("CCO")], dtype=object
                    )
                }
            )
        )
        return table, harness.run(factory("llamo-description"), model(), table)
    finally:
        harness.BATCH_ROWS = old


@fact("table.read")
def _table_read() -> None:
    """Finding 3: batches are RecordBatches with a SMILES extension array."""
    _, out = _executed()
    frame = out.to_pandas()
    assert frame["Description"].notna().tolist() == [True, False, True]
    assert next(iter(out.schema)).ktype == knext.logical(SmilesValue)  # kept as typed
    assert list(frame.index) == ["Row0", "Row1", "Row2"]


@fact("batch_output")
def _batch_output() -> None:
    """Finding 4: one output batch per input batch, so every batch but the last is full."""
    _, out = _executed()
    assert [b.num_rows for b in out.batches()] == [2, 1]


@fact("execute.outputs")
def _execute_outputs() -> None:
    _, out = _executed()
    assert isinstance(out, kat.ArrowSourceTable)  # written through a BatchOutputTable


@fact("ports.custom")
def _ports_custom() -> None:
    spec, obj = harness._receive(
        harness.node_info(factory("llamo-qa")).input_ports[0], model()
    )  # the spec's one-argument deserialize goes through the backend's retry
    assert isinstance(spec, knext.PortObjectSpec) and obj.spec is spec
    assert spec.serialize() == model().spec.serialize()


@fact("param.versions")
def _param_versions() -> None:
    current = Version.parse_version(harness.version())
    for node_id in NODE_IDS:
        for name, p in parameters(node_id).items():
            if name not in PARAMETERS_0_1_0[node_id]:
                assert p._since_version, f"{node_id}.{name} was added after 0.1.0: since_version"
                assert Version(0, 1, 0) < Version.parse_version(p._since_version) <= current


@fact("param.extension_version")
def _param_extension_version() -> None:
    """The backend imports the module before it sets the version: no callable default may
    be evaluated at import (the harness imports the same way)."""
    harness.load_extension()
    for node_id in NODE_IDS:
        assert kp.extract_parameters(factory(node_id)())


@fact("knime_yml")
def _knime_yml() -> None:
    """Finding 5: only one top-level module name of ours, a package we own."""
    meta = harness.knime_yml()
    path = harness.ROOT / meta["extension_module"]
    assert (path / "__init__.py").is_file(), "extension_module should be our own package"
    assert harness.extension_top_level_modules() == [path.name]
    assert path.name.startswith("llamo"), path.name
    Version.parse_version(meta["version"])


@fact("node_id_java")
def _node_ids() -> None:
    """Java stores ``<extension id>_!_<node id>``: renaming an id orphans saved workflows."""
    nodes = harness.registered_nodes()
    ours = {n for n, info in nodes.items() if info.category == "/community/llamo"}
    assert ours == set(NODE_IDS)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


@fact("icons")
def _icons() -> None:
    """Icons resolve against the folder holding knime.yml and are 16x16 PNGs."""
    nodes = harness.registered_nodes()
    icons = [nodes[n].icon_path for n in NODE_IDS]
    icons += [c["icon"] for c in kn._categories.values() if c["icon"].startswith("icons/")]
    for icon in icons:
        assert _png_size(harness.ROOT / icon) == (16, 16), icon
