"""Node decorators, ports, port types, contexts and errors (stand-in of
``knime.extension.nodes``).

``@node`` instantiates the class with no arguments at decoration time (as KNIME does, several
times), records ports and metadata in :data:`REGISTRY`, and binds the module-level name to a
factory, not the class. Port decorators insert at the front, so the final order is the source
order.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from knime.extension import _params


class InvalidParametersError(Exception):
    """Bad settings or input, raised in configure (or execute)."""


class NodeType(enum.Enum):
    SOURCE = "Source"
    SINK = "Sink"
    LEARNER = "Learner"
    PREDICTOR = "Predictor"
    MANIPULATOR = "Manipulator"
    VISUALIZER = "Visualizer"
    OTHER = "Other"


# ------------------------------------------------------------------------------- ports
class PortObjectSpec:
    def serialize(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> PortObjectSpec:
        raise NotImplementedError


class PortObject:
    def __init__(self, spec: PortObjectSpec) -> None:
        self._spec = spec

    @property
    def spec(self) -> PortObjectSpec:
        return self._spec

    def serialize(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def deserialize(cls, spec: PortObjectSpec, storage: bytes) -> PortObject:
        raise NotImplementedError


@dataclass(frozen=True)
class PortType:
    name: str
    object_class: type
    spec_class: type
    id: str

    def is_super_type_of(self, other: PortType) -> bool:
        return issubclass(other.object_class, self.object_class) and issubclass(
            other.spec_class, self.spec_class
        )


PORT_TYPES: dict[str, PortType] = {}
TABLE = PortType("Table", object, object, "knime.table")


def port_type(name: str, object_class: type, spec_class: type, id: str | None = None) -> PortType:
    pid = id or f"{object_class.__module__}.{object_class.__qualname__}"
    if pid in PORT_TYPES or any(
        p.object_class is object_class or p.spec_class is spec_class for p in PORT_TYPES.values()
    ):
        raise ValueError(f"port type {pid} (or its classes) registered twice")
    PORT_TYPES[pid] = PortType(name, object_class, spec_class, pid)
    return PORT_TYPES[pid]


@dataclass(frozen=True)
class Port:
    type: PortType
    name: str
    description: str
    optional: bool = False


def _port_decorator(kind: str, port: Port) -> Callable[[Any], Any]:
    def wrap(cls: Any) -> Any:
        ports = list(getattr(cls, f"__knime_{kind}__", []))
        ports.insert(0, port)  # decorators apply bottom-up: insert at the front
        setattr(cls, f"__knime_{kind}__", ports)
        return cls

    return wrap


def input_table(name: str, description: str, optional: bool = False) -> Callable[[Any], Any]:
    return _port_decorator("inputs", Port(TABLE, name, description, optional))


def output_table(name: str, description: str) -> Callable[[Any], Any]:
    return _port_decorator("outputs", Port(TABLE, name, description))


def input_port(
    name: str, description: str, port_type: PortType, optional: bool = False
) -> Callable[[Any], Any]:
    return _port_decorator("inputs", Port(port_type, name, description, optional))


def output_port(name: str, description: str, port_type: PortType) -> Callable[[Any], Any]:
    return _port_decorator("outputs", Port(port_type, name, description))


# ---------------------------------------------------------------------------- categories
CATEGORIES: dict[str, dict[str, Any]] = {}


def category(
    path: str,
    level_id: str,
    name: str,
    description: str,
    icon: str,
    after: str = "",
    locked: bool = True,
) -> str:
    full = f"{path.rstrip('/')}/{level_id}"
    CATEGORIES[full] = {"name": name, "description": description, "icon": icon}
    return full


# ------------------------------------------------------------------------------- nodes
@dataclass
class NodeInfo:
    id: str
    name: str
    node_type: NodeType
    icon_path: str
    category: str
    keywords: list[str]
    cls: type
    inputs: list[Port]
    outputs: list[Port]
    short_description: str
    full_description: str
    parameters: dict[str, Any] = field(default_factory=dict)


REGISTRY: dict[str, NodeInfo] = {}


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
) -> Callable[[type], Callable[[], Any]]:
    def wrap(cls: type) -> Callable[[], Any]:
        node_id = id or cls.__name__
        if node_id in REGISTRY:
            raise ValueError(f"node id {node_id} registered twice")
        doc = inspect.getdoc(cls) or ""
        short, _, rest = doc.partition("\n")
        inputs = list(getattr(cls, "__knime_inputs__", []))
        outputs = list(getattr(cls, "__knime_outputs__", []))

        def factory() -> Any:
            obj = cls()
            for value in vars(obj).values():
                if isinstance(value, _params._Base):
                    raise AttributeError("parameters must be class attributes, not set in __init__")
            obj.input_ports = inputs
            obj.output_ports = outputs
            return obj

        for _ in range(2):  # KNIME instantiates at import time, more than once
            factory()
        REGISTRY[node_id] = NodeInfo(
            node_id,
            name,
            node_type,
            icon_path,
            category,
            list(keywords or []),
            cls,
            inputs,
            outputs,
            short.strip(),
            rest.strip(),
            _params._params_of(cls),
        )
        factory.__knime_node_id__ = node_id  # type: ignore[attr-defined]
        return factory

    return wrap


# ---------------------------------------------------------------------------- contexts
@dataclass(frozen=True)
class Credential:
    username: str
    password: str
    credential_name: str


class ConfigurationContext:
    def __init__(
        self,
        flow_variables: dict[str, Any] | None = None,
        credentials: dict[str, Credential] | None = None,
    ) -> None:
        self.flow_variables = _FlowVariables(flow_variables or {})
        self._credentials = credentials or {}
        self.warnings: list[str] = []

    def set_warning(self, message: str) -> None:
        self.warnings.append(message)

    def get_credential_names(self) -> list[str]:
        return list(self._credentials)

    def get_credentials(self, name: str) -> Credential:
        return self._credentials[name]


class ExecutionContext(ConfigurationContext):
    """Records progress calls; ``cancel_after`` polls of :meth:`is_canceled` return True."""

    def __init__(
        self, *, cancel_after: int | None = None, temp_dir: str = "/tmp", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.progress: list[tuple[float, str | None]] = []
        self.cancel_after = cancel_after
        self.polls = 0
        self._temp_dir = temp_dir

    def set_progress(self, progress: float, message: str | None = None) -> None:
        if isinstance(progress, bool) or not isinstance(progress, int | float):
            raise TypeError(f"progress must be a number, got {progress!r}")
        if not 0 <= progress <= 1:
            raise ValueError(f"progress {progress} is outside [0, 1]")
        self.progress.append((float(progress), message))

    def is_canceled(self) -> bool:
        self.polls += 1
        return self.cancel_after is not None and self.polls > self.cancel_after

    def get_workflow_temp_dir(self) -> str:
        return self._temp_dir


class _FlowVariables(dict):  # type: ignore[type-arg]
    def __setitem__(self, key: str, value: Any) -> None:
        if key.startswith("knime"):
            raise ValueError(f"flow variable names starting with 'knime' are reserved: {key}")
        if not isinstance(value, bool | int | float | str | list):
            raise TypeError(f"unsupported flow variable type {type(value).__name__}")
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        raise RuntimeError("flow variables cannot be deleted")
