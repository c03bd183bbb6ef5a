"""Runs stand-in nodes the way KNIME does: configure with specs, ports serialised between
nodes, execute, and the output checked against configure's schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import knime.extension as knext

NODES_DIR = Path(__file__).resolve().parents[2] / "nodes"


def load_extension() -> Any:
    """Import nodes/extension.py as KNIME does (its folder on the path), once."""
    if str(NODES_DIR) not in sys.path:
        sys.path.insert(0, str(NODES_DIR))
    import extension

    return extension


def _spec_of(value: Any) -> Any:
    if isinstance(value, knext.Table):
        return value.schema
    return value.spec


def _through_port(value: Any) -> Any:
    """Serialise a port object between two nodes (JSON spec + bytes), as KNIME does."""
    if isinstance(value, knext.Table):
        return value
    spec = type(value.spec).deserialize(json.loads(json.dumps(value.spec.serialize())))
    return type(value).deserialize(spec, value.serialize())


def run(
    factory: Any,
    *inputs: Any,
    settings: dict[str, Any] | None = None,
    ctx: knext.ExecutionContext | None = None,
) -> Any:
    node = factory()
    for name, value in (settings or {}).items():
        setattr(node, name, value)
    inputs = tuple(_through_port(v) for v in inputs)
    configured = node.configure(knext.ConfigurationContext(), *(_spec_of(v) for v in inputs))
    if isinstance(configured, knext.Schema) and len(set(configured.column_names)) != len(
        configured.column_names
    ):
        raise RuntimeError("duplicate column names in the configured schema")
    out = node.execute(ctx or knext.ExecutionContext(), *inputs)
    if isinstance(out, knext.BatchOutputTable):
        out = out.to_table()
    if isinstance(out, knext.Table):
        assert out.schema == configured, (out.schema, configured)
    else:
        assert out.spec.serialize() == configured.serialize()
    return out
