"""Runs the extension's nodes the way KNIME's Python backend does, against the stand-in.

For every node, in KNIME's order:

1. a new node saves its default settings (``extract_parameters``);
2. its dialog is built from the input specs (``extract_schema``, ``extract_ui_schema``); the
   test's settings are what a user picks there, so a column must be among the offered ones;
3. applying the dialog validates the settings (``validate_parameters``), which are saved;
4. configure: a fresh instance, ``inject_parameters``, ``validate_specs``, ``configure``;
   KNIME re-reads the settings afterwards (an auto-picked column persists);
5. execute: a fresh instance with the saved settings, input tables read in batches as they
   were stored; outputs checked against configure's specs.

Specs and port objects travel between nodes serialised (JSON and bytes) as in KNIME. Input
tables given by a test are stored in batches of ``BATCH_ROWS`` rows (all but the last); a
node's output reaches the next node in the batches it wrote.
"""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import knime.extension as knext
from knime._arrow import _table as kat
from knime._arrow import _types as kty
from knime.extension import nodes as kn
from knime.extension import parameter as kp

ROOT = Path(__file__).resolve().parents[2]
#: Rows per stored batch of the input tables a test gives (KNIME cuts at ~64 MB).
BATCH_ROWS = 1000
#: The steps of the last :func:`run`, in the order they were called.
TRACE: list[str] = []


class SettingsError(ValueError):
    """The dialog refused the settings (KNIME shows the message and does not apply them)."""


@dataclass
class JavaSide:
    """KNIME's Java half of the contexts: records warnings and progress, cancels on cue
    (``is_canceled`` returns True from poll ``cancel_after + 1`` on), and holds the
    credentials flow variables that reach the node (name -> (user name, password))."""

    cancel_after: int | None = None
    credentials: dict[str, tuple[str, str]] = field(default_factory=dict)
    input_specs: list[Any] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    progress: list[tuple[float, str | None]] = field(default_factory=list)
    polls: int = 0

    def set_warning(self, message: str) -> None:
        self.warnings.append(message)

    def set_progress(self, progress: float, message: str | None) -> None:
        self.progress.append((progress, message))

    def is_canceled(self) -> bool:
        self.polls += 1
        return self.cancel_after is not None and self.polls > self.cancel_after

    def get_credential_names(self) -> list[str]:
        return list(self.credentials)

    def get_credentials(self, identifier: str) -> tuple[str, str]:
        return self.credentials[identifier]  # KeyError if unknown, as Java fails

    def get_input_specs(self) -> list[Any]:
        return self.input_specs

    def get_connected_input_port_numbers(self) -> list[int]:
        return [1 for _ in self.input_specs]  # one connection per (non-group) input port

    def get_connected_output_port_numbers(self) -> list[int]:
        return [1]

    def get_workflow_temp_dir(self) -> str:
        return tempfile.gettempdir()

    def get_workflow_data_area_dir(self) -> str:
        return tempfile.gettempdir()

    def get_knime_home_dir(self) -> str:
        return tempfile.gettempdir()


# --------------------------------------------------------------------------- the extension
def knime_yml() -> dict[str, str]:
    """The top-level ``key: value`` lines of knime.yml (all that Java reads)."""
    out = {}
    for line in (ROOT / "knime.yml").read_text().splitlines():
        if line[:1].isalpha() and ":" in line:
            key, _, value = line.partition(":")
            out[key.strip()] = value.split(" #", 1)[0].strip()
    return out


_loaded: dict[str, Any] = {}


def load_extension() -> ModuleType:
    """Import the extension as KNIME does (once): the parent folder of knime.yml's
    ``extension_module`` goes on the path and its last component is imported; only then is
    the extension version set."""
    if "module" not in _loaded:
        meta = knime_yml()
        path = ROOT / meta["extension_module"]
        kn._extension_id = f"{meta['group_id']}.{meta['name']}"
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        before = set(sys.modules)
        module = importlib.import_module(path.name)
        kp.set_extension_version(meta["version"])
        _loaded["module"] = module
        _loaded["top_level"] = sorted(
            {name.split(".")[0] for name in set(sys.modules) - before}
            & {p.stem for p in path.parent.iterdir()}
        )
    return _loaded["module"]


def extension_top_level_modules() -> list[str]:
    """The top-level module names that importing the extension added from its folder."""
    load_extension()
    return _loaded["top_level"]


def registered_nodes() -> dict[str, Any]:
    """Node id -> what the stand-in recorded at import (ports, descriptions, factory)."""
    load_extension()
    return dict(kn._nodes)


def node_info(factory: Any) -> Any:
    for info in registered_nodes().values():
        if info.factory is factory:
            return info
    raise KeyError(f"{factory!r} is not a registered node factory")


def version() -> str:
    return knime_yml()["version"]


# ------------------------------------------------------------------------ ports in transit
def _json(data: Any) -> Any:
    return json.loads(json.dumps(data))


def _deserialize_spec(spec_class: type, data: Any) -> Any:
    """As the backend does: ``deserialize(data, java_callback)``, then ``(data)`` on TypeError."""
    try:
        return spec_class.deserialize(data, None)
    except TypeError:
        return spec_class.deserialize(data)


def _receive(port: Any, value: Any) -> tuple[Any, Any]:
    """(spec, object) of ``value`` as a node behind ``port`` gets them from KNIME."""
    if port.type == kn._TABLE:
        if not isinstance(value, knext.Table):
            raise TypeError(f"port {port.name!r} needs a table, got {type(value).__name__}")
        table = (
            value
            if isinstance(value, kat.ArrowSourceTable)
            else kat._make_source_table(value.to_pyarrow(), BATCH_ROWS)
        )
        spec = knext.Schema.deserialize(_json(table.schema.serialize()))
        return kty.with_knime_metadata(spec), table
    kind = next((t for t in kn._port_types.values() if isinstance(value, t.object_class)), None)
    if kind is None or not port.type.is_super_type_of(kind):
        raise TypeError(f"port {port.name!r} does not accept {kind.name}")
    spec = _deserialize_spec(port.type.spec_class, _json(value.spec.serialize()))
    return spec, port.type.object_class.deserialize(spec, value.serialize())


def _send_spec(port: Any, spec: Any) -> Any:
    """Check a configured spec as the backend does and serialise it (None: the node cannot
    configure this output yet; downstream nodes cannot configure either)."""
    if spec is None:
        return None
    if port.type == kn._TABLE:
        if isinstance(spec, knext.Column):
            spec = knext.Schema.from_columns(spec)
        if not isinstance(spec, knext.Schema):
            raise TypeError(f"configure must return a Schema for {port.name!r}, got {spec!r}")
        return spec.serialize()  # RuntimeError on duplicate column names
    assert isinstance(spec, port.type.spec_class), (spec, port.type)
    return _json(spec.serialize())


# ------------------------------------------------------------------------------- the dialog
def _choose(
    data: dict[str, Any], ui: dict[str, Any], schema: dict[str, Any], key: str, value: Any
) -> None:
    """A user's choice in the dialog: only what the dialog offers can be picked."""
    model = data["model"]
    if key not in model:
        raise SettingsError(f"the dialog has no setting {key!r}")
    scope = f"#/properties/model/properties/{key}"
    control = next(e for e in ui["elements"] if e["scope"] == scope)
    offered = control["options"].get("possibleValues")
    cleared = value == "" and control["options"].get("format") == "columnSelection"
    if offered is not None and not cleared and value not in [v["id"] for v in offered]:
        raise SettingsError(f"{key}: {value!r} is not among the offered {offered}")
    one_of = schema["properties"]["model"]["properties"][key].get("oneOf")
    if one_of is not None and value not in [m["const"] for m in one_of]:
        raise SettingsError(f"{key}: {value!r} is not one of {one_of}")
    model[key] = value


def dialog(
    factory: Any, specs: list[Any], saved: dict[str, Any], java: JavaSide | None = None
) -> tuple[dict, dict, dict]:
    """(JSON schema, UI schema, settings) of the node's dialog for these input specs (and the
    credentials flow variables of ``java``, offered by a parameter's ``choices``)."""
    credentials = dict(java.credentials) if java is not None else {}
    java = JavaSide(
        input_specs=[None if s is None else ("spec", s) for s in specs], credentials=credentials
    )
    ctx = knext.DialogCreationContext(java, {}, lambda s: None if s is None else s[1])
    node = factory()
    kp.inject_parameters(node, saved, version())
    schema = kp.extract_schema(node, version(), ctx)
    ui = kp.extract_ui_schema(node, ctx)
    TRACE.extend(["extract_schema", "extract_ui_schema"])
    return schema, ui, _json(kp.extract_parameters(node, for_dialog=True))


# ------------------------------------------------------------------------------------ run
@dataclass
class Configured:
    """A node after configure: what KNIME keeps for execute."""

    factory: Any
    objects: list[Any]
    specs: list[Any]
    sent: list[Any]
    saved: dict[str, Any]


def configure(
    factory: Any, *inputs: Any, settings: dict[str, Any] | None = None, java: JavaSide | None = None
) -> Configured:
    """Steps 1-4: defaults, dialog, validated settings, ``validate_specs`` and configure."""
    TRACE.clear()
    info = node_info(factory)
    java = java or JavaSide()
    received = [_receive(p, v) for p, v in zip(info.input_ports, inputs, strict=True)]
    specs = [s for s, _ in received]

    saved = _json(kp.extract_parameters(factory()))  # a new node: defaults
    TRACE.append("extract_parameters")
    schema, ui, data = dialog(factory, specs, saved, java)
    for key, value in (settings or {}).items():
        _choose(data, ui, schema, key, value)
    try:
        kp.validate_parameters(factory(), data, version())
    except ValueError as exc:  # the backend returns str(error); the dialog shows it
        raise SettingsError(str(exc)) from exc
    TRACE.append("validate_parameters")
    saved = _json(data)

    node = factory()
    kp.inject_parameters(node, saved, version())
    kp.validate_specs(node, specs)
    TRACE.extend(["inject_parameters", "validate_specs", "configure"])
    configured = _as_list(node.configure(knext.ConfigurationContext(java, {}), *specs))
    sent = [_send_spec(p, s) for p, s in zip(info.output_ports, configured, strict=True)]
    saved = _json(kp.extract_parameters(node))  # re-read: configure may have picked values
    TRACE.append("extract_parameters")
    return Configured(factory, [o for _, o in received], specs, sent, saved)


def reconfigure(configured: Configured, java: JavaSide | None = None) -> Configured:
    """KNIME configuring a node again with its saved settings (no dialog), e.g. after
    something upstream changed, such as the credentials flow variables (``java``)."""
    java = java or JavaSide()
    info = node_info(configured.factory)
    node = configured.factory()
    kp.inject_parameters(node, configured.saved, version())
    kp.validate_specs(node, configured.specs)
    TRACE.extend(["inject_parameters", "validate_specs", "configure"])
    specs = _as_list(node.configure(knext.ConfigurationContext(java, {}), *configured.specs))
    sent = [_send_spec(p, s) for p, s in zip(info.output_ports, specs, strict=True)]
    saved = _json(kp.extract_parameters(node))
    return Configured(configured.factory, configured.objects, configured.specs, sent, saved)


def execute(configured: Configured, java: JavaSide | None = None) -> list[Any]:
    """Step 5: a fresh instance with the saved settings executes; outputs are checked."""
    java = java or JavaSide()
    info = node_info(configured.factory)
    node = configured.factory()
    kp.inject_parameters(node, configured.saved, version())
    TRACE.extend(["inject_parameters", "execute"])
    outputs = _as_list(node.execute(knext.ExecutionContext(java, {}), *configured.objects))
    if java.is_canceled():  # the backend asks once more: a canceled node's outputs are dropped
        raise RuntimeError("Canceled")
    return [
        _check_output(p, o, s)
        for p, o, s in zip(info.output_ports, outputs, configured.sent, strict=True)
    ]


def run(
    factory: Any, *inputs: Any, settings: dict[str, Any] | None = None, java: JavaSide | None = None
) -> Any:
    """Configure and execute one node as KNIME does; returns its output (a table as the next
    node will read it)."""
    java = java or JavaSide()
    results = execute(configure(factory, *inputs, settings=settings, java=java), java)
    return results[0] if len(results) == 1 else results


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, tuple | list) else [value]


def _refines(executed: dict[str, Any], configured: dict[str, Any]) -> bool:
    """Whether an executed port spec keeps every value configure set: execute may only fill
    in what configure left empty (a served model's name and checksum, known once the server
    was asked). KNIME itself does not compare custom port specs; this is our invariant."""
    empty = ("", [], None, False)
    return set(executed) == set(configured) and all(
        executed[k] == v for k, v in configured.items() if v not in empty
    )


def _check_output(port: Any, value: Any, configured: Any) -> Any:
    if port.type != kn._TABLE:
        assert isinstance(value, port.type.object_class), (value, port.type)
        assert isinstance(value.serialize(), bytes)
        if configured is not None:
            executed = _json(value.spec.serialize())
            assert _refines(executed, configured), ("execute's spec differs", executed)
        return value
    if isinstance(value, kat.ArrowBatchOutputTable):
        table = kat._source_from_sink(value)
    elif isinstance(value, kat.ArrowTable):
        table = kat._make_source_table(value.to_pyarrow())
    else:
        raise TypeError(f"a table output must be a Table or BatchOutputTable, got {value!r}")
    if configured is None:  # configure could not tell the columns: nothing to compare
        return table
    want = knext.Schema.deserialize(configured)
    got = [(c.name, c.ktype) for c in table.schema]
    assert got == [(c.name, c.ktype) for c in want], ("output differs from configure", got, want)
    return table
