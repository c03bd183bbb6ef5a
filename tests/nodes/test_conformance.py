"""Conformance with the real ``knime.extension``, driven by the fact sheet
``../shared/spec/knime_extension_api.json`` (KNIME 5.5.3, compared with 5.11.0).

- every behaviour fact is either reproduced by the stand-in (standin_checks.py) or listed
  with the reason it is not; the stand-in and, where they depend on it, the nodes
  (node_checks.py) are checked fact by fact;
- the stand-in exports only public ``knime.extension`` names, each with the real parameters
  and defaults, and the backend functions the harness calls have the real signatures;
- every ``knext`` name, call and runtime attribute the node code uses exists in the real API
  (and the stand-in), and every call binds to the real signature.

Skipped when ``../shared`` is absent; test_standin_facts.py and test_node_facts.py still run
the checks themselves.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import re
from typing import Any

import knime.extension as knext
import pytest

from . import fact_sheet, harness
from .node_checks import NODE_CHECKS
from .standin_checks import NOT_REPRODUCED, STANDIN_CHECKS

SHEET = fact_sheet.load()
pytestmark = pytest.mark.skipif(SHEET is None, reason=f"no fact sheet at {fact_sheet.SHEET}")

FACT_IDS = [b["id"] for b in SHEET["behaviours"]] if SHEET else []
CHECKED = [f for f in FACT_IDS if f in STANDIN_CHECKS or f in NODE_CHECKS]

#: The stand-in module standing for each sheet prefix.
STANDIN_MODULES = {
    "knime.extension.parameter.": "knime.extension.parameter",
    "knime.extension.nodes.": "knime.extension.nodes",
    "knime.extension.version.": "knime.extension.version",
    "knime.api.table.": "knime.api.table",
    "knime._arrow._table.": "knime._arrow._table",
}
#: Variables of the node code holding KNIME runtime objects -> the sheet's class.
RUNTIME = {
    "ctx": "knime.extension.ExecutionContext",
    "table": "knime._arrow._table.ArrowSourceTable",
    "batch": "knime._arrow._table.ArrowTable",
    "out": "knime._arrow._table.ArrowBatchOutputTable",
    "schema": "knime.extension.Schema",
}


def test_every_behaviour_fact_is_checked_or_explained() -> None:
    ids = set(FACT_IDS)
    assert len(FACT_IDS) == SHEET["meta"]["counts"]["behaviour_facts"]
    assert ids - set(STANDIN_CHECKS) - set(NOT_REPRODUCED) == set(), "unclassified facts"
    assert set(STANDIN_CHECKS) & set(NOT_REPRODUCED) == set()
    stale = (set(STANDIN_CHECKS) | set(NODE_CHECKS) | set(NOT_REPRODUCED)) - ids
    assert stale == set(), "checks for fact ids the sheet does not have"


@pytest.mark.parametrize("fact_id", CHECKED)
def test_behaviour_fact(fact_id: str) -> None:
    """The stand-in reproduces the fact, and the nodes obey it where they depend on it."""
    if fact_id in STANDIN_CHECKS:
        STANDIN_CHECKS[fact_id]()
    if fact_id in NODE_CHECKS:
        NODE_CHECKS[fact_id]()


# ------------------------------------------------------------------- the stand-in's names
def test_standin_exports_only_public_names() -> None:
    public = {k.rsplit(".", 1)[1] for k in SHEET["knime.extension"]}
    assert set(knext.__all__) - public == set()
    for line in SHEET["meta"]["not_in_knime.extension"]:
        name = line.split(" ")[0]
        assert not hasattr(knext, name), f"{name} is not public in KNIME"


def _compare(item: dict[str, Any], obj: Any, label: str) -> None:
    """Constructor or parameters, enum members, inner classes and the methods both define."""
    want = fact_sheet.sheet_params(item)
    if want is not None:
        assert fact_sheet.object_params(obj) == want, label
    if item.get("class_members") and inspect.isclass(obj):
        want_members = fact_sheet.class_members(item)
        assert fact_sheet.object_members(obj, list(want_members)) == want_members, label
    for name, inner in item.get("inner_classes", {}).items():
        _compare(inner, getattr(obj, name), f"{label}.{name}")
    if not inspect.isclass(obj):
        return
    for name, method in fact_sheet.methods(item).items():
        defined = next((k for k in obj.__mro__ if name in vars(k)), object)
        if defined is not object:
            got = fact_sheet.object_params(getattr(obj, name))
            assert got == fact_sheet.sheet_params(method), f"{label}.{name}"
    for name in item.get("properties", []):
        if hasattr(obj, name):
            assert isinstance(inspect.getattr_static(obj, name), property), f"{label}.{name}"


@pytest.mark.parametrize("name", sorted(knext.__all__))
def test_standin_name_matches_the_real_one(name: str) -> None:
    _compare(SHEET["knime.extension"][f"knime.extension.{name}"], getattr(knext, name), name)


@pytest.mark.parametrize(
    "qualified",
    [
        "knime.extension.parameter.extract_parameters",
        "knime.extension.parameter.inject_parameters",
        "knime.extension.parameter.validate_parameters",
        "knime.extension.parameter.validate_specs",
        "knime.extension.parameter.extract_schema",
        "knime.extension.parameter.extract_ui_schema",
        "knime.extension.parameter.set_extension_version",
        "knime.extension.nodes.Credential",
        "knime.extension.version.Version",
        "knime.api.table.Table",
        "knime.api.table.BatchOutputTable",
        "knime._arrow._table.ArrowTable",
        "knime._arrow._table.ArrowSourceTable",
        "knime._arrow._table.ArrowBatchOutputTable",
    ],
)
def test_backend_names_match_the_real_ones(qualified: str) -> None:
    """What the harness calls in place of KNIME's backend has the real signature."""
    prefix = next(p for p in STANDIN_MODULES if qualified.startswith(p))
    module = importlib.import_module(STANDIN_MODULES[prefix])
    _compare(SHEET["submodules"][qualified], getattr(module, qualified[len(prefix) :]), qualified)


# ---------------------------------------------------------------------- the node code
@functools.cache
def _uses() -> tuple[list[fact_sheet.Use], list[tuple[str, str, str]]]:
    return fact_sheet.knext_uses(fact_sheet.node_files())


def _resolve(chain: tuple[str, ...], where: str) -> dict[str, Any] | None:
    """The sheet's entry for ``knext.<chain>`` (None for an enum member or a property)."""
    item = SHEET["knime.extension"].get(f"knime.extension.{chain[0]}")
    assert item is not None, f"{where}: knext.{chain[0]} is not public in KNIME"
    for name in chain[1:]:
        assert name in fact_sheet.attributes(item), f"{where}: knext.{'.'.join(chain)}"
        if name in item.get("inner_classes", {}):
            item = item["inner_classes"][name]
        elif name in fact_sheet.methods(item):
            item = fact_sheet.methods(item)[name]
        else:
            return None
    return item


def test_node_code_uses_only_real_names_and_signatures() -> None:
    uses, _ = _uses()
    assert uses, "no knext use found: is the extension module right?"
    for use in uses:
        item = _resolve(use.chain, use.where)
        functools.reduce(getattr, use.chain, knext)  # and the stand-in has it
        if use.call is None or item is None:
            continue
        if any(isinstance(a, ast.Starred) for a in use.call.args) or any(
            k.arg is None for k in use.call.keywords
        ):
            continue
        params = fact_sheet.sheet_params(item)
        assert params is not None, f"{use.where}: knext.{'.'.join(use.chain)} is not callable"
        try:
            bound = fact_sheet.signature(params).bind(
                *range(len(use.call.args)), **{k.arg: None for k in use.call.keywords}
            )
        except TypeError as exc:
            pytest.fail(f"{use.where}: knext.{'.'.join(use.chain)}(...): {exc}")
        if use.chain == ("EnumParameter",):  # facts enum.default_missing_bug, enum.validator
            assert "default_value" in bound.arguments, f"{use.where}: EnumParameter default"
            assert "validator" not in bound.arguments, f"{use.where}: use @param.validator"


def test_node_code_imports_only_public_knime_modules() -> None:
    _, imports = _uses()
    chemistry = {n["name"] for n in SHEET["knime.types.chemistry"]["names"]}
    for module, name, where in imports:
        if module == "knime.types.chemistry":
            assert name in chemistry, f"{where}: {name}"
        else:
            assert module == "knime.extension" and name in knext.__all__, f"{where}: {module}"


def test_node_code_runtime_attributes_exist() -> None:
    """Attributes read from KNIME's contexts, tables, batches and schemas are real."""
    for var, attr, where in fact_sheet.attribute_uses(fact_sheet.node_files(), set(RUNTIME)):
        assert attr in fact_sheet.class_attributes(SHEET, RUNTIME[var]), f"{where}: {var}.{attr}"
        module, _, cls = RUNTIME[var].rpartition(".")
        standin = importlib.import_module(STANDIN_MODULES.get(module + ".", module))
        assert hasattr(getattr(standin, cls), attr), f"stand-in {cls}.{attr} ({where})"


def test_readme_names_the_checked_knime_versions() -> None:
    """The README's KNIME section says which KNIME versions the facts come from."""
    text = (harness.ROOT / "README.md").read_text()
    section = text.split("## KNIME extension", 1)[1].split("\n## ", 1)[0]
    meta = SHEET["meta"]
    refs = [meta["primary_ref"]["ref"]] + [r["ref"] for r in meta["compared_refs"]]
    for ref in refs:
        match = re.search(r"(\d+\.\d+\.\d+)", ref)
        if match:
            assert match.group(1) in section, f"README KNIME section should name {ref}"
    assert "knime.log" in section
