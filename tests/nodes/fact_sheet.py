"""Reading the fact sheet of the real ``knime.extension`` (``../shared/spec/
knime_extension_api.json``) and comparing signatures and node code with it.

Signatures are compared as ``[(name, default source text)]``: the sheet gives defaults as
Python source (``"None"``, ``"'auto'"``, ``"LayoutDirection.VERTICAL"``).
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import harness

SHARED = Path(os.environ.get("LLAMO_SHARED", harness.ROOT.parent / "shared"))
SHEET = SHARED / "spec" / "knime_extension_api.json"

Params = list[tuple[str, str | None]]


def load() -> dict[str, Any] | None:
    """The fact sheet, or None when ``../shared`` is not there (users, CI)."""
    if not SHEET.is_file():
        return None
    return json.loads(SHEET.read_text())


def entry(sheet: dict[str, Any], qualified: str) -> dict[str, Any] | None:
    """The sheet's entry for ``knime.extension.X`` or a submodule name."""
    return sheet["knime.extension"].get(qualified) or sheet["submodules"].get(qualified)


# ------------------------------------------------------------------------------ signatures
def _source(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    return repr(value)


def _drop_self(params: Params) -> Params:
    return params[1:] if params and params[0][0] in ("self", "cls") else params


def sheet_params(item: dict[str, Any]) -> Params | None:
    """Constructor (classes), parameters (functions, methods) or fields (dataclasses)."""
    if "constructor" in item:
        raw = item["constructor"]
    elif "params" in item:
        raw = item["params"]
    elif "fields" in item:
        raw = [{"name": k, **v} for k, v in item["fields"].items()]
    else:
        return None
    return _drop_self([(p["name"], p.get("default")) for p in raw])


def object_params(obj: Any) -> Params:
    """The same form for a stand-in class (its constructor), function or method."""
    if inspect.isclass(obj) and dataclasses.is_dataclass(obj):
        return [
            (f.name, None if f.default is dataclasses.MISSING else _source(f.default))
            for f in dataclasses.fields(obj)
        ]
    if inspect.isclass(obj) and issubclass(obj, enum.Enum):
        obj = obj.__init__
    try:
        signature = inspect.signature(obj)
    except ValueError:  # a class without a constructor of its own
        return []
    out: Params = []
    for p in signature.parameters.values():
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        out.append((prefix + p.name, None if p.default is p.empty else _source(p.default)))
    return _drop_self(out)


def class_members(item: dict[str, Any]) -> dict[str, str]:
    return dict(item.get("class_members", {}))


def object_members(cls: type, names: list[str]) -> dict[str, str]:
    """Enum members (all of them) or the named class attributes, as source text."""
    if issubclass(cls, enum.Enum):
        return {m.name: _source(m.value) for m in cls}
    return {n: _source(getattr(cls, n)) for n in names if hasattr(cls, n)}


def methods(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {**item.get("inherited_methods", {}), **item.get("methods", {})}


def attributes(item: dict[str, Any]) -> set[str]:
    """Every member name the sheet lists for a class."""
    props = [p.split(" ")[0] for p in item.get("inherited_properties", [])]
    return (
        set(methods(item))
        | set(item.get("properties", []))
        | set(props)
        | set(item.get("fields", {}))
        | set(item.get("class_members", {}))
        | set(item.get("inner_classes", {}))
    )


def class_attributes(sheet: dict[str, Any], qualified: str) -> set[str]:
    """:func:`attributes` of a class and of its bases in the sheet, which lists inherited
    methods one level deep only (``ExecutionContext`` lists ``ConfigurationContext``'s own
    methods, not the ``_BaseContext`` ones such as ``get_credentials``)."""
    item = entry(sheet, qualified)
    if item is None:
        return set()
    module = qualified.rpartition(".")[0]
    out = attributes(item)
    for base in item.get("bases", []):
        out |= class_attributes(sheet, f"{module}.{base}")
    return out


def signature(params: Params) -> inspect.Signature:
    """An ``inspect.Signature`` to bind call sites against."""
    out = []
    for name, default in params:
        if name.startswith("**"):
            out.append(inspect.Parameter(name[2:], inspect.Parameter.VAR_KEYWORD))
        elif name.startswith("*"):
            out.append(inspect.Parameter(name[1:], inspect.Parameter.VAR_POSITIONAL))
        else:
            out.append(
                inspect.Parameter(
                    name,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    default=inspect.Parameter.empty if default is None else default,
                )
            )
    return inspect.Signature(out)


# ------------------------------------------------------------------------ the node code
def node_files() -> list[Path]:
    """The extension's Python files (the package of knime.yml's ``extension_module``, or
    the folder of a plain module)."""
    path = harness.ROOT / harness.knime_yml()["extension_module"]
    folder = path if path.is_dir() else path.parent
    return sorted(folder.glob("*.py"))


@dataclass
class Use:
    """One use of the ``knime`` API in the node code."""

    chain: tuple[str, ...]  # knext.EnumParameter.Style.VALUE_SWITCH -> ("EnumParameter", ...)
    call: ast.Call | None
    where: str


def _chain(node: ast.AST) -> tuple[str, list[str]] | None:
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.insert(0, node.attr)
        node = node.value
    return (node.id, names) if isinstance(node, ast.Name) else None


def knext_uses(files: list[Path]) -> tuple[list[Use], list[tuple[str, str, str]]]:
    """Every ``knext.X...`` chain (with its call, if called) and every ``from knime...
    import`` of the node code: ``(uses, [(module, name, where)])``."""
    uses: list[Use] = []
    imports: list[tuple[str, str, str]] = []
    for path in files:
        tree = ast.parse(path.read_text())
        aliases = set()
        parents = {
            child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == "knime.extension":
                        aliases.add(alias.asname or "knime")
                    elif alias.name.startswith("knime"):
                        imports.append((alias.name, "", f"{path.name}:{node.lineno}"))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("knime"):
                for alias in node.names:
                    imports.append((node.module, alias.name, f"{path.name}:{node.lineno}"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or isinstance(parents.get(node), ast.Attribute):
                continue
            found = _chain(node)
            if found is None or found[0] not in aliases:
                continue
            parent = parents.get(node)
            call = parent if isinstance(parent, ast.Call) and parent.func is node else None
            uses.append(Use(tuple(found[1]), call, f"{path.name}:{node.lineno}"))
    return uses, imports


def attribute_uses(files: list[Path], names: set[str]) -> set[tuple[str, str, str]]:
    """``(variable, attribute, where)`` for attributes read from variables named ``names``."""
    found = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in names
            ):
                found.add((node.value.id, node.attr, f"{path.name}:{node.lineno}"))
    return found
