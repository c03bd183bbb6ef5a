"""Node decorators, ports, port types, contexts and errors (stand-in of
``knime.extension.nodes``), written from the fact sheet.

``@node`` instantiates the class with no arguments at decoration time (three times, as KNIME
does), records it in ``_nodes`` and binds the module-level name to a factory, not the class.
Port decorators insert at the front, so the final order is the source order. Contexts talk to
a ``java_ctx``: in tests, the harness's stand-in of KNIME's Java side.

Deliberately stricter than KNIME: a second node with an id already taken raises ValueError
(KNIME silently replaces the first, fact ``decorators.node``).
"""

from __future__ import annotations

import abc
import enum
from collections import UserDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from knime.api import schema as ks
from knime.extension import parameter as kp


class InvalidParametersError(Exception):
    """Raised in configure (or execute) for unusable settings: a configuration error."""

    def __init__(self, message: Any) -> None:
        super().__init__(message)


class NodeType(enum.Enum):
    SOURCE = "Source"
    SINK = "Sink"
    LEARNER = "Learner"
    PREDICTOR = "Predictor"
    MANIPULATOR = "Manipulator"
    VISUALIZER = "Visualizer"
    OTHER = "Other"


# ------------------------------------------------------------------------------------ ports
class PortObject(abc.ABC):
    """Base of custom port objects."""

    def __init__(self, spec: ks.PortObjectSpec) -> None:
        self._spec = spec

    @property
    def spec(self) -> ks.PortObjectSpec:
        return self._spec

    @abc.abstractmethod
    def serialize(self) -> bytes:
        """The object's bytes (KNIME keeps them in a file store)."""

    @classmethod
    @abc.abstractmethod
    def deserialize(cls, spec: ks.PortObjectSpec, storage: bytes) -> PortObject:
        """Rebuild the object from its spec and bytes."""


@dataclass(frozen=True)
class PortType:
    id: str
    name: str
    object_class: type
    spec_class: type

    def is_super_type_of(self, port_type: PortType) -> bool:
        return issubclass(port_type.object_class, self.object_class) and issubclass(
            port_type.spec_class, self.spec_class
        )


# A table port's type is this string in KNIME (fact sheet, stand-in differences #14).
_TABLE = "PortType.TABLE"

_port_types: dict[str, PortType] = {}
#: ``group_id.name`` of the extension being loaded (the default port-type id uses it).
_extension_id = "stand-in.extension"


def port_type(name: str, object_class: type, spec_class: type, id: str | None = None) -> PortType:
    """Register a custom port type; a class or id registered twice raises ValueError."""
    pid = id or f"{_extension_id}.{object_class.__module__}.{object_class.__qualname__}"
    for known in _port_types.values():
        if pid == known.id or object_class is known.object_class or spec_class is known.spec_class:
            raise ValueError(f"port type {pid!r} or its classes are already registered")
    _port_types[pid] = PortType(pid, name, object_class, spec_class)
    return _port_types[pid]


@dataclass(frozen=True)
class Port:
    type: Any
    name: str
    description: str
    id: str | None = None
    optional: bool | None = False


def _add_port(side: str, port: Port) -> Callable[[Any], Any]:
    marker = f"__knime_added_{side}__"

    def wrap(cls: Any) -> Any:
        if side in vars(cls) and not vars(cls).get(marker):
            raise ValueError(f"{cls.__name__} defines {side} itself; do not also use decorators")
        ports = list(vars(cls).get(side, []))
        ports.insert(0, port)  # decorators apply bottom-up: the result is the source order
        setattr(cls, side, ports)
        setattr(cls, marker, True)
        return cls

    return wrap


def input_table(name: str, description: str, optional: bool | None = False) -> Callable:
    return _add_port("input_ports", Port(_TABLE, name, description, optional=optional))


def output_table(name: str, description: str) -> Callable:
    return _add_port("output_ports", Port(_TABLE, name, description))


def input_port(
    name: str, description: str, port_type: PortType, optional: bool | None = False
) -> Callable:
    return _add_port("input_ports", Port(port_type, name, description, optional=optional))


def output_port(name: str, description: str, port_type: PortType) -> Callable:
    return _add_port("output_ports", Port(port_type, name, description))


# ----------------------------------------------------------------------- categories, nodes
_categories: dict[str, dict[str, Any]] = {}


def category(
    path: str,
    level_id: str,
    name: str,
    description: str,
    icon: str,
    after: str = "",
    locked: bool = True,
) -> str:
    full = f"{path}{level_id}" if path.endswith("/") else f"{path}/{level_id}"
    _categories[full] = {"name": name, "description": description, "icon": icon}
    return full


@dataclass
class _Node:
    """What KNIME records about a node at import time."""

    id: str
    name: str
    node_type: NodeType
    icon_path: str
    category: str
    keywords: list[str]
    factory: Callable[[], Any]
    input_ports: list[Port]
    output_ports: list[Port]
    short_description: str
    full_description: str


_nodes: dict[str, _Node] = {}


def _unwrap_views(result: Any) -> Any:
    if isinstance(result, ks._ColumnarView):
        return result.get()
    if isinstance(result, tuple | list):
        return type(result)(_unwrap_views(r) for r in result)
    return result


def node(
    name: str,
    node_type: NodeType,
    icon_path: str,
    category: str,
    after: str | None = None,
    keywords: list[str] | None = None,
    id: str | None = None,
    is_deprecated: bool = False,
    is_hidden: bool = False,
) -> Callable:
    def wrap(cls: type) -> Callable[[], Any]:
        node_id = id or cls.__name__
        if node_id in _nodes:
            raise ValueError(f"node id {node_id!r} is used twice")

        def factory() -> Any:
            obj = cls()
            for attr, value in vars(obj).items():
                if isinstance(value, kp._BaseParameter | kp._GroupDescriptor):
                    raise AttributeError(f"parameter {attr} must be a class attribute")
            obj.input_ports = list(getattr(cls, "input_ports", []))
            obj.output_ports = list(getattr(cls, "output_ports", []))
            obj.output_view = None
            for method in ("configure", "execute"):  # the backend unwraps schema views
                bound = getattr(obj, method, None)
                if bound is not None:
                    setattr(obj, method, lambda *a, _m=bound: _unwrap_views(_m(*a)))
            return obj

        for _ in range(3):  # ports, output ports and view are looked up on fresh instances
            probe = factory()
        doc = cls.__doc__ or ""
        doc = doc[1:] if doc.startswith("\n") else doc  # raw __doc__, not inspect.getdoc
        short, _, rest = doc.partition("\n")
        _nodes[node_id] = _Node(
            node_id,
            name,
            node_type,
            icon_path,
            category,
            list(keywords or []),
            factory,
            probe.input_ports,
            probe.output_ports,
            short.strip() if doc else "Missing description.",
            rest.strip(),
        )
        return factory

    return wrap


# ------------------------------------------------------------------------------ contexts
@dataclass(frozen=True)
class Credential:
    username: str
    password: str
    credential_name: str


class _FlowVariablesDict(UserDict):
    """Names are str and may not start with 'knime'; variables cannot be deleted."""

    def __setitem__(self, key: Any, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"flow variable names must be str, got {type(key).__name__}")
        if key.startswith("knime"):
            raise ValueError(f"flow variable names starting with 'knime' are reserved: {key}")
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        raise RuntimeError("flow variables cannot be deleted")


class _BaseContext:
    def __init__(self, java_ctx: Any, flow_variables: Any) -> None:
        self._java_ctx = java_ctx
        self._flow_variables = _FlowVariablesDict()
        self._flow_variables.data.update(flow_variables or {})

    @property
    def flow_variables(self) -> _FlowVariablesDict:
        return self._flow_variables

    def get_credential_names(self) -> list[str]:
        return list(self._java_ctx.get_credential_names())

    def get_credentials(self, identifier: str) -> Credential:
        try:
            username, password = self._java_ctx.get_credentials(identifier)
        except Exception as exc:
            raise KeyError(identifier) from exc
        return Credential(username, password, identifier)


class DialogCreationContext(_BaseContext):
    """Given to ``extract_schema`` / ``extract_ui_schema`` when a dialog opens."""

    def __init__(self, java_ctx: Any, flow_variables: Any, specs_to_python_converter: Any) -> None:
        super().__init__(java_ctx, flow_variables)
        self._convert = specs_to_python_converter

    def get_input_specs(self) -> list[ks.PortObjectSpec | None]:
        return [self._convert(s) for s in self._java_ctx.get_input_specs()]

    def get_flow_variables(self) -> dict[str, Any]:
        return dict(self._flow_variables)


class ConfigurationContext(_BaseContext):
    def __init__(
        self, java_ctx: Any, flow_variables: Any, input_ports: Any = None, output_ports: Any = None
    ) -> None:
        super().__init__(java_ctx, flow_variables)
        self._input_ports = input_ports
        self._output_ports = output_ports

    def get_connected_input_port_numbers(self) -> list[int]:
        return list(self._java_ctx.get_connected_input_port_numbers())

    def get_connected_output_port_numbers(self) -> list[int]:
        return list(self._java_ctx.get_connected_output_port_numbers())

    def set_warning(self, message: str) -> None:
        self._java_ctx.set_warning(message)


class ExecutionContext(ConfigurationContext):
    def set_progress(self, progress: float, message: str | None = None) -> None:
        """Ints (bool too) become floats; outside [-0.0001, 1.0001] -> ValueError; clamped."""
        if isinstance(progress, int):
            progress = float(progress)
        if not isinstance(progress, float):
            raise TypeError(f"progress must be a float, got {type(progress).__name__}")
        if not -0.0001 <= progress <= 1.0001:
            raise ValueError(f"progress must be between 0 and 1, got {progress}")
        if message is not None and not isinstance(message, str):
            raise TypeError(f"message must be a str, got {type(message).__name__}")
        self._java_ctx.set_progress(min(max(progress, 0.0), 1.0), message)

    def is_canceled(self) -> bool:
        return bool(self._java_ctx.is_canceled())

    def get_workflow_temp_dir(self) -> str:
        return self._java_ctx.get_workflow_temp_dir()

    def get_workflow_data_area_dir(self) -> str:
        return self._java_ctx.get_workflow_data_area_dir()

    def get_knime_home_dir(self) -> str:
        return self._java_ctx.get_knime_home_dir()
