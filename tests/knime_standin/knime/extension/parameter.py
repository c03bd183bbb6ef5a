"""Node parameters (stand-in of ``knime.extension.parameter``), written from the fact sheet.

Facts reproduced (ids of ``knime_extension_api.json``): values live in ``obj.__parameters__``,
a default is written on first read and assignment validates (``param.lazy_defaults``);
``IntParameter`` accepts bool, ``BoolParameter`` only bool (``param.types``);
``@param.validator`` stores the function, returns None and replaces the default check except
for enums (``param.validator_decorator``); enum values are member *names*: a member raises
ValueError, a missing default or a ``validator=`` argument raises AttributeError (``enum.*``);
``ColumnParameter.NONE == "<none>"`` and ``""`` reads back as None (``column.none_value``);
column parameters check ``specs[port_index]`` before configure and for the dialog
(``configure.validate_specs``, ``dialog.column_choices``); versions (``param.versions``,
``param.extension_version``).
"""

from __future__ import annotations

import enum
import numbers
from collections.abc import Callable
from typing import Any

from knime.api import schema as ks
from knime.extension.version import Version

_extension_version: str | None = None


def set_extension_version(version: str) -> None:
    """Called by the backend *after* importing the extension module."""
    global _extension_version
    Version.parse_version(version)
    _extension_version = version


def _current_version() -> Version:
    if _extension_version is None:
        raise RuntimeError("The extension version has not been set by the backend.")
    return Version.parse_version(_extension_version)


def _as_version(value: Version | str | None) -> Version:
    return value if isinstance(value, Version) else Version.parse_version(value)


class LayoutDirection(enum.Enum):
    VERTICAL = "VerticalLayout"
    HORIZONTAL = "HorizontalLayout"


def _values(obj: Any) -> dict[str, Any]:
    if isinstance(obj, _GroupBinding):
        return obj._values
    return obj.__dict__.setdefault("__parameters__", {})


class _BaseParameter:
    """A class-attribute descriptor holding one value per node instance."""

    def __init__(
        self,
        label: str | None = None,
        description: str | None = None,
        default_value: Any = None,
        validator: Callable[[Any], None] | None = None,
        since_version: Version | str | None = None,
        is_advanced: bool = False,
    ) -> None:
        self._label = label
        self._description = description
        self._default_value = default_value
        self._validator = validator
        self._since_version = since_version
        self._is_advanced = is_advanced
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        values = _values(obj)
        if self._name not in values:
            values[self._name] = self._default()
        return values[self._name]

    def __set__(self, obj: Any, value: Any) -> None:
        self._validate(value)
        _values(obj)[self._name] = value

    def validator(self, func: Callable[[Any], None]) -> None:
        """Decorator: ``func`` replaces the default check; the decorated name becomes None."""
        self._validator = func

    # ----------------------------------------------------------------- internals
    def _default(self, version: Version | None = None) -> Any:
        if callable(self._default_value):
            return self._default_value(version or _current_version())
        return self._default_value

    def _check(self, value: Any) -> None:
        """The default type/range check."""

    def _validate(self, value: Any) -> None:
        if self._validator is not None:
            self._validator(value)
        else:
            self._check(value)

    def _to_dict(self, value: Any) -> Any:
        return value

    def _from_dict(self, value: Any) -> Any:
        return value

    def _schema(self) -> dict[str, Any]:
        return {"title": self._label, "description": self._description}

    def _dialog_schema(self, dialog_context: Any) -> dict[str, Any]:
        """The schema as a dialog opened with ``dialog_context`` shows it."""
        return self._schema()

    def _ui_options(self, dialog_context: Any) -> dict[str, Any]:
        return {}


class _NumericParameter(_BaseParameter):
    _kind: tuple[type, ...] = (numbers.Number,)

    def __init__(
        self,
        label: str | None = None,
        description: str | None = None,
        default_value: Any = 0,
        validator: Callable[[Any], None] | None = None,
        min_value: Any = None,
        max_value: Any = None,
        since_version: Version | str | None = None,
        is_advanced: bool = False,
    ) -> None:
        super().__init__(label, description, default_value, validator, since_version, is_advanced)
        self._min, self._max = min_value, max_value

    def _check(self, value: Any) -> None:
        if not isinstance(value, self._kind):  # bool is an int: accepted, as in KNIME
            raise TypeError(f"{value!r} is of type {type(value).__name__}, expected a number")
        if self._min is not None and value < self._min:
            raise ValueError(f"{value} is smaller than the minimum {self._min}")
        if self._max is not None and value > self._max:
            raise ValueError(f"{value} is greater than the maximum {self._max}")


class IntParameter(_NumericParameter):
    _kind = (int,)

    def _schema(self) -> dict[str, Any]:
        return {**super()._schema(), "type": "integer"}


class DoubleParameter(_NumericParameter):
    def __init__(
        self,
        label: str | None = None,
        description: str | None = None,
        default_value: Any = 0.0,
        validator: Callable[[Any], None] | None = None,
        min_value: Any = None,
        max_value: Any = None,
        since_version: Version | str | None = None,
        is_advanced: bool = False,
    ) -> None:
        super().__init__(
            label,
            description,
            default_value,
            validator,
            min_value,
            max_value,
            since_version,
            is_advanced,
        )

    def _schema(self) -> dict[str, Any]:
        return {**super()._schema(), "type": "number"}


class BoolParameter(_BaseParameter):
    def __init__(
        self,
        label: str | None = None,
        description: str | None = None,
        default_value: Any = False,
        validator: Callable[[Any], None] | None = None,
        since_version: Version | str | None = None,
        is_advanced: bool = False,
    ) -> None:
        super().__init__(label, description, default_value, validator, since_version, is_advanced)

    def _check(self, value: Any) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"{value!r} is of type {type(value).__name__}, expected bool")

    def _schema(self) -> dict[str, Any]:
        return {**super()._schema(), "type": "boolean"}


class StringParameter(_BaseParameter):
    """``enum`` membership is not checked and ``choices`` must be callable (as in 5.5)."""

    def __init__(
        self,
        label: str | None = None,
        description: str | None = None,
        default_value: Any = "",
        enum: list[str] | None = None,
        validator: Callable[[Any], None] | None = None,
        since_version: Version | str | None = None,
        is_advanced: bool = False,
        choices: Callable[..., Any] | None = None,
    ) -> None:
        if choices is not None and not callable(choices):
            raise TypeError("choices must be a callable (static lists need KNIME 5.8)")
        super().__init__(label, description, default_value, validator, since_version, is_advanced)
        self._enum = enum
        self._choices = choices

    def _check(self, value: Any) -> None:
        if not isinstance(value, str):
            raise TypeError(f"{value!r} is of type {type(value).__name__}, expected str")

    def _schema(self) -> dict[str, Any]:
        return {**super()._schema(), "type": "string"}

    def _dialog_schema(self, dialog_context: Any) -> dict[str, Any]:
        """With ``choices`` and a dialog context, the dialog offers ``choices(context)``
        (e.g. the credentials flow variables' names) as ``oneOf``; saved values are not
        checked against them."""
        schema = self._schema()
        if self._choices is not None and dialog_context is not None:
            schema["oneOf"] = [{"const": c, "title": c} for c in self._choices(dialog_context)]
        return schema


class EnumParameterOptions(enum.Enum):
    """Members are ``NAME = (label, description)``."""

    def __init__(self, label: str, description: str) -> None:
        self.label = label
        self.description = description

    @classmethod
    def get_all_options(cls) -> list[str]:
        return [member.name for member in cls]


class EnumParameter(_BaseParameter):
    """The value is a member's *name*; the default validator checks it and a decorated
    validator runs after it."""

    class Style(enum.Enum):
        RADIO = "radio"
        VALUE_SWITCH = "valueSwitch"
        DROPDOWN = "string"

    def __init__(
        self,
        label: str | None = None,
        description: str | None = None,
        default_value: Any = None,
        enum: type[EnumParameterOptions] | None = None,
        validator: Callable[[Any], None] | None = None,
        since_version: Version | str | None = None,
        is_advanced: bool = False,
        style: EnumParameter.Style | None = None,
    ) -> None:
        if enum is None:
            raise TypeError("EnumParameter needs enum=")
        if validator is not None:  # KNIME calls a method only EnumSetParameter has
            raise AttributeError("'EnumParameter' object has no attribute '_add_default_validator'")
        if default_value is None:  # KNIME takes get_all_options()[0].name of a str
            raise AttributeError("'str' object has no attribute 'name'")
        super().__init__(label, description, default_value, None, since_version, is_advanced)
        self._enum = enum
        self._style = style

    def _check(self, value: Any) -> None:
        options = self._enum.get_all_options()
        if value not in options:
            raise ValueError(f"{value!r} is not one of {options}")

    def _validate(self, value: Any) -> None:
        self._check(value)
        if self._validator is not None:
            self._validator(value)

    def _schema(self) -> dict[str, Any]:
        members = [{"const": m.name, "title": m.label} for m in self._enum]
        return {**super()._schema(), "oneOf": members}

    def _ui_options(self, dialog_context: Any) -> dict[str, Any]:
        return {"format": (self._style or EnumParameter.Style.DROPDOWN).value}


def _pick_spec(specs: Any, port_index: int) -> ks.Schema:
    """The table spec at ``port_index``; TypeError when that port is not a table."""
    if specs is None or not 0 <= port_index < len(specs):
        raise TypeError(f"There is no input port at index {port_index}.")
    spec = specs[port_index]
    if not isinstance(spec, ks.Schema):
        raise TypeError(
            f"The port at index {port_index} is not a table. The ColumnFilter can only be "
            f"used for table ports. Got {type(spec).__name__}."
        )
    return spec


class ColumnParameter(_BaseParameter):
    """A column of the table at input ``port_index``; ``None`` when none is chosen."""

    NONE = "<none>"

    def __init__(
        self,
        label: str | None = None,
        description: str | None = None,
        port_index: int = 0,
        column_filter: Callable[[ks.Column], bool] | None = None,
        include_row_key: bool = False,
        include_none_column: bool = False,
        since_version: str | None = None,
        is_advanced: bool = False,
        schema_provider: Any = None,
        default_value: Any = None,
    ) -> None:
        super().__init__(label, description, default_value, None, since_version, is_advanced)
        self._port_index = port_index
        self._column_filter = column_filter
        self._include_row_key = include_row_key
        self._include_none_column = include_none_column

    def _check(self, value: Any) -> None:
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{value!r} is not a column name")

    def _to_dict(self, value: Any) -> Any:
        return "" if value is None else value

    def _from_dict(self, value: Any) -> Any:
        return None if value == "" else value  # "<none>" stays a string (KNIME 5.8+)

    def _validate_specs(self, specs: Any) -> None:
        _pick_spec(specs, self._port_index)

    def _schema(self) -> dict[str, Any]:
        return {**super()._schema(), "type": "string"}

    def _ui_options(self, dialog_context: Any) -> dict[str, Any]:
        specs = dialog_context.get_input_specs() if dialog_context is not None else None
        choices: list[dict[str, Any]] = []
        if specs is not None and self._port_index < len(specs) and specs[self._port_index] is None:
            pass  # an unconnected or unconfigured input offers no columns (assumed)
        elif specs is not None:
            for column in _pick_spec(specs, self._port_index):
                if self._column_filter is None or self._column_filter(column):
                    meta = column.metadata  # injected by KNIME; KeyError/TypeError if absent
                    kind = {
                        "id": meta["preferred_value_type"],
                        "text": meta["displayed_column_type"],
                    }
                    choices.append({"id": column.name, "text": column.name, "type": kind})
        if self._include_none_column:  # KNIME 5.8+: selecting it gives the value "<none>"
            choices.append({"id": self.NONE, "text": "None"})
        return {
            "format": "columnSelection",
            "showRowKeys": self._include_row_key,
            "showNoneColumn": self._include_none_column,
            "possibleValues": choices,
        }


# ------------------------------------------------------------------------------ groups
class _GroupBinding:
    """``node.group`` bound to the node's stored values of that group."""

    def __init__(self, group: Any, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_group", group)
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        param = _parameters_of(type(self._group)).get(name)
        if param is not None:
            return param.__get__(self)
        return getattr(self._group, name)

    def __setattr__(self, name: str, value: Any) -> None:
        param = _parameters_of(type(self._group)).get(name)
        if param is None:
            raise AttributeError(name)
        param.__set__(self, value)


class _GroupDescriptor:
    def __init__(self, instance: Any, label: str, since_version: Any, is_advanced: bool) -> None:
        self._instance = instance
        self._label = label
        self._since_version = since_version
        self._is_advanced = is_advanced
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return _GroupBinding(self._instance, _values(obj).setdefault(self._name, {}))

    def __set__(self, obj: Any, value: Any) -> None:
        raise AttributeError(f"parameter group {self._name} cannot be assigned")

    def _validate_group(self, values: dict[str, Any]) -> None:
        check = getattr(self._instance, "validate", None)
        if check is not None:
            check(values)


def parameter_group(
    label: str,
    since_version: Version | str | None = None,
    is_advanced: bool = False,
    layout_direction: LayoutDirection = LayoutDirection.VERTICAL,
) -> Callable[[type], Callable[..., Any]]:
    """Class decorator: an instance used as a node's class attribute is a parameter group."""

    def wrap(cls: type) -> Callable[..., Any]:
        def make(*args: Any, **kwargs: Any) -> _GroupDescriptor:
            return _GroupDescriptor(cls(*args, **kwargs), label, since_version, is_advanced)

        make.__wrapped_group__ = cls  # type: ignore[attr-defined]
        return make

    return wrap


# ------------------------------------------------- what the backend calls on a node
_Param = _BaseParameter | _GroupDescriptor


def _parameters_of(cls: type) -> dict[str, _Param]:
    out: dict[str, _Param] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, _BaseParameter | _GroupDescriptor):
                out[name] = value
    return out


def _walk(obj: Any) -> list[tuple[_BaseParameter, str]]:
    """Every parameter of ``obj`` (groups included) with its dialog scope."""
    found = []

    def visit(cls: type, scope: str) -> None:
        for name, p in _parameters_of(cls).items():
            if isinstance(p, _GroupDescriptor):
                visit(type(p._instance), f"{scope}/properties/{name}")
            else:
                found.append((p, f"{scope}/properties/{name}"))

    visit(type(obj), "#/properties/model")
    return found


def extract_parameters(obj: Any, for_dialog: bool = False) -> dict:
    """``{"model": {...}}`` with every parameter's value (no version filter)."""

    def extract(target: Any) -> dict[str, Any]:
        cls = type(target._group) if isinstance(target, _GroupBinding) else type(target)
        out = {}
        for name, p in _parameters_of(cls).items():
            value = getattr(target, name)
            out[name] = extract(value) if isinstance(p, _GroupDescriptor) else p._to_dict(value)
        return out

    return {"model": extract(obj)}


def inject_parameters(
    obj: Any,
    parameters: dict,
    parameters_version: str | None = None,
    exclude_validations: bool = False,
) -> None:
    """Load saved values. A missing key newer than ``parameters_version`` gets the default
    for that version; any other missing key is skipped silently."""
    saved = _as_version(parameters_version)

    def inject(target: Any, cls: type, values: dict[str, Any]) -> None:
        for name, p in _parameters_of(cls).items():
            if name not in values:
                if (
                    isinstance(p, _BaseParameter)
                    and p._since_version
                    and _as_version(p._since_version) > saved
                ):
                    _values(target)[name] = p._default(saved)
                continue
            if isinstance(p, _GroupDescriptor):
                inject(getattr(target, name), type(p._instance), values[name])
                if not exclude_validations:
                    p._validate_group(values[name])
            elif exclude_validations:
                _values(target)[name] = p._from_dict(values[name])
            else:
                setattr(target, name, p._from_dict(values[name]))

    inject(obj, type(obj), parameters["model"])


def validate_parameters(obj: Any, parameters: dict, saved_version: str | None = None) -> None:
    """Raise ValueError for a key missing from settings saved at or after its version, and
    whatever a parameter's validation raises."""
    saved = _as_version(saved_version)

    def validate(cls: type, values: dict[str, Any]) -> None:
        for name, p in _parameters_of(cls).items():
            if name not in values:
                if _as_version(p._since_version) <= saved:
                    raise ValueError(f'Parameter missing for key "{name}".')
                continue
            if isinstance(p, _GroupDescriptor):
                validate(type(p._instance), values[name])
                p._validate_group(values[name])
            else:
                p._validate(p._from_dict(values[name]))

    validate(type(obj), parameters["model"])


def validate_specs(obj: Any, specs: Any) -> None:
    """Before every configure: each column parameter's port must be a table."""
    for p, _ in _walk(obj):
        if isinstance(p, ColumnParameter):
            p._validate_specs(specs)


def extract_schema(
    obj: Any, extension_version: str | None = None, dialog_creation_context: Any = None
) -> dict:
    """The settings' JSON schema: parameters newer than the extension version are left out."""
    version = _as_version(extension_version or _extension_version)

    def schema_of(cls: type) -> dict[str, Any]:
        props = {}
        for name, p in _parameters_of(cls).items():
            if _as_version(p._since_version) > version:
                continue
            if isinstance(p, _GroupDescriptor):
                props[name] = schema_of(type(p._instance))
            else:
                props[name] = p._dialog_schema(dialog_creation_context)
        return {"type": "object", "properties": props}

    return {"type": "object", "properties": {"model": schema_of(type(obj))}}


def extract_ui_schema(obj: Any, dialog_creation_context: Any) -> dict:
    """The dialog's controls; column choices come from the dialog context's input specs."""
    elements = [
        {
            "type": "Control",
            "scope": scope,
            "label": p._label,
            "options": p._ui_options(dialog_creation_context),
        }
        for p, scope in _walk(obj)
    ]
    return {"type": "VerticalLayout", "elements": elements}
