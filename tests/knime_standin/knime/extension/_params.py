"""Node parameters (stand-in of ``knime.extension.parameter``).

Class-attribute descriptors; each node instance gets its own values, written lazily on first
read; assignment validates at once. Saved settings are ``{"model": {name: value, group:
{...}}}``; loading settings saved by an older extension version gives parameters added later
(``since_version``) their defaults, and any other missing key is an error.
"""

from __future__ import annotations

import enum
import numbers
from collections.abc import Callable
from typing import Any

_EXTENSION_VERSION: str | None = None


def set_extension_version(version: str) -> None:
    global _EXTENSION_VERSION
    _EXTENSION_VERSION = version


def _version(v: str | None) -> tuple[int, ...]:
    return tuple(int(x) for x in (v or "0.0.0").split("."))


class Version:
    def __init__(self, text: str) -> None:
        self.major, self.minor, self.patch = _version(text)

    def __ge__(self, other: Version) -> bool:
        return (self.major, self.minor, self.patch) >= (other.major, other.minor, other.patch)


class _Base:
    """Common behaviour of parameters and parameter groups."""

    def __init__(
        self,
        label: str,
        description: str,
        since_version: str | None = None,
        is_advanced: bool = False,
    ) -> None:
        self.label = label
        self.description = description
        self.since_version = since_version
        self.is_advanced = is_advanced
        self.name = ""
        self.rules: list[tuple[Any, Any]] = []

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def rule(self, condition: Any, effect: Any) -> Any:
        self.rules.append((condition, effect))
        return self


class Parameter(_Base):
    """A single value with a default, type checks and an optional validator."""

    def __init__(
        self,
        label: str,
        description: str,
        default_value: Any = None,
        validator: Callable[[Any], None] | None = None,
        since_version: str | None = None,
        is_advanced: bool = False,
    ) -> None:
        super().__init__(label, description, since_version, is_advanced)
        self._default = default_value
        self._validator = validator

    # -- defaults and values
    def default(self, version: str | None = None) -> Any:
        if callable(self._default):
            if version is None and _EXTENSION_VERSION is None:
                raise RuntimeError("callable default needs an extension version")
            return self._convert(self._default(Version(version or _EXTENSION_VERSION)))
        return self._convert(self._default)

    def _convert(self, value: Any) -> Any:
        return value

    def check(self, value: Any) -> None:
        """The default type/range check (a custom validator replaces it)."""

    def validate(self, value: Any) -> None:
        if self._validator is not None:
            self._validator(value)
        else:
            self.check(value)

    def validator(self, func: Callable[[Any], None]) -> Callable[[Any], None]:
        self._validator = func
        return func

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        values = _values(obj)
        if self.name not in values:
            values[self.name] = self.default()
        return values[self.name]

    def __set__(self, obj: Any, value: Any) -> None:
        value = self._convert(value)
        self.validate(value)
        _values(obj)[self.name] = value


def _values(obj: Any) -> dict[str, Any]:
    if isinstance(obj, _GroupBinding):
        return obj._values
    if "__parameters__" not in obj.__dict__:
        obj.__dict__["__parameters__"] = {}
    return obj.__dict__["__parameters__"]


class _Ranged(Parameter):
    kind: tuple[type, ...] = ()

    def __init__(
        self,
        label: str,
        description: str,
        default_value: Any = 0,
        validator: Callable[[Any], None] | None = None,
        min_value: Any = None,
        max_value: Any = None,
        since_version: str | None = None,
        is_advanced: bool = False,
    ) -> None:
        super().__init__(label, description, default_value, validator, since_version, is_advanced)
        self.min_value, self.max_value = min_value, max_value

    def check(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, self.kind):
            raise TypeError(f"{self.name}: {value!r} has the wrong type")
        if self.min_value is not None and value < self.min_value:
            raise ValueError(f"{self.name}: {value} < minimum {self.min_value}")
        if self.max_value is not None and value > self.max_value:
            raise ValueError(f"{self.name}: {value} > maximum {self.max_value}")


class IntParameter(_Ranged):
    kind = (int,)


class DoubleParameter(_Ranged):
    kind = (numbers.Number,)

    def __init__(
        self,
        label: str,
        description: str,
        default_value: Any = 0.0,
        validator: Callable[[Any], None] | None = None,
        min_value: Any = None,
        max_value: Any = None,
        since_version: str | None = None,
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


class BoolParameter(Parameter):
    def __init__(
        self,
        label: str,
        description: str,
        default_value: bool = False,
        validator: Callable[[Any], None] | None = None,
        since_version: str | None = None,
        is_advanced: bool = False,
    ) -> None:
        super().__init__(label, description, default_value, validator, since_version, is_advanced)

    def check(self, value: Any) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"{self.name}: {value!r} is not a bool")


class StringParameter(Parameter):
    def __init__(
        self,
        label: str,
        description: str,
        default_value: str = "",
        enum: list[str] | None = None,
        validator: Callable[[Any], None] | None = None,
        since_version: str | None = None,
        is_advanced: bool = False,
        choices: Any = None,
    ) -> None:
        super().__init__(label, description, default_value, validator, since_version, is_advanced)
        self.enum = enum
        self.choices = choices
        if not default_value and isinstance(choices, list) and choices:
            first = choices[0]
            self._default = first if isinstance(first, str) else first.id

    def check(self, value: Any) -> None:
        if not isinstance(value, str):
            raise TypeError(f"{self.name}: {value!r} is not a str")
        if self.enum is not None and value not in self.enum:
            raise ValueError(f"{self.name}: {value!r} not in {self.enum}")


class MultilineStringParameter(StringParameter):
    def __init__(self, *args: Any, number_of_lines: int = 3, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)


class EnumParameterOptions(enum.Enum):
    """Members are ``NAME = (label, description)``; the stored value is the member name."""

    def __init__(self, label: str, description: str) -> None:
        self.label = label
        self.description = description


class EnumParameter(Parameter):
    class Style(enum.Enum):
        RADIO = "radio"
        VALUE_SWITCH = "value_switch"
        DROPDOWN = "dropdown"

    def __init__(
        self,
        label: str,
        description: str,
        default_value: Any = None,
        enum: type[EnumParameterOptions] | None = None,
        validator: Callable[[Any], None] | None = None,
        since_version: str | None = None,
        is_advanced: bool = False,
        style: Any = None,
    ) -> None:
        if enum is None:
            raise TypeError("EnumParameter needs enum=")
        self.options = enum
        if default_value is None:
            default_value = next(iter(enum)).name
        super().__init__(label, description, default_value, validator, since_version, is_advanced)

    def _convert(self, value: Any) -> Any:
        return value.name if isinstance(value, EnumParameterOptions) else value

    def validate(self, value: Any) -> None:  # default check AND custom validator
        if value not in self.options.__members__:
            raise ValueError(f"{self.name}: {value!r} not one of {list(self.options.__members__)}")
        if self._validator is not None:
            self._validator(value)


class ColumnParameter(Parameter):
    def __init__(
        self,
        label: str,
        description: str,
        port_index: int = 0,
        column_filter: Callable[[Any], bool] | None = None,
        include_row_key: bool = False,
        include_none_column: bool = False,
        since_version: str | None = None,
        is_advanced: bool = False,
        default_value: str | None = None,
    ) -> None:
        super().__init__(label, description, default_value, None, since_version, is_advanced)
        self.port_index = port_index
        self.column_filter = column_filter

    def check(self, value: Any) -> None:
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{self.name}: a column name (str) or None, got {value!r}")


class MultiColumnParameter(Parameter):
    def __init__(
        self,
        label: str,
        description: str,
        port_index: int = 0,
        column_filter: Any = None,
        since_version: str | None = None,
        is_advanced: bool = False,
    ) -> None:
        super().__init__(label, description, None, None, since_version, is_advanced)

    def default(self, version: str | None = None) -> Any:
        return []


# --------------------------------------------------------------------------- groups
class _GroupBinding:
    """``node.group`` bound to the node's stored values of that group."""

    def __init__(self, group: Any, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_group", group)
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        param = type(self._group).__dict__.get(name)
        if isinstance(param, _Base):
            return param.__get__(self)
        return getattr(self._group, name)

    def __setattr__(self, name: str, value: Any) -> None:
        param = type(self._group).__dict__.get(name)
        if not isinstance(param, _Base):
            raise AttributeError(name)
        param.__set__(self, value)


class _GroupDescriptor(_Base):
    def __init__(
        self, instance: Any, label: str, since_version: str | None, is_advanced: bool
    ) -> None:
        super().__init__(label, "", since_version, is_advanced)
        self.instance = instance

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        values = _values(obj)
        return _GroupBinding(self.instance, values.setdefault(self.name, {}))

    def __set__(self, obj: Any, value: Any) -> None:
        raise AttributeError(f"parameter group {self.name} cannot be assigned")


def parameter_group(
    label: str,
    since_version: str | None = None,
    is_advanced: bool = False,
    layout_direction: Any = None,
) -> Callable[[type], Callable[..., Any]]:
    """Class decorator: instances become group descriptors when used as class attributes."""

    def wrap(cls: type) -> Callable[..., Any]:
        def make(*args: Any, **kwargs: Any) -> _GroupDescriptor:
            return _GroupDescriptor(cls(*args, **kwargs), label, since_version, is_advanced)

        make.__wrapped_group__ = cls  # type: ignore[attr-defined]
        return make

    return wrap


# --------------------------------------------------------------- save / load / validate
def _params_of(cls: type) -> dict[str, _Base]:
    out: dict[str, _Base] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, _Base):
                out[name] = value
    return out


def extract_parameters(obj: Any, version: str | None = None) -> dict[str, Any]:
    """``{"model": {...}}`` with every parameter's current value (defaults included)."""
    version = version or _EXTENSION_VERSION

    def extract(target: Any, params: dict[str, _Base]) -> dict[str, Any]:
        out = {}
        for name, p in params.items():
            if p.since_version and _version(p.since_version) > _version(version):
                continue  # not part of this version's settings
            if isinstance(p, _GroupDescriptor):
                out[name] = extract(getattr(target, name), _params_of(type(p.instance)))
            else:
                out[name] = getattr(target, name)
        return out

    return {"model": extract(obj, _params_of(type(obj)))}


def inject_parameters(
    obj: Any, parameters: dict[str, Any], saved_version: str | None = None
) -> None:
    """Load saved settings; parameters newer than ``saved_version`` get their defaults."""

    def inject(target: Any, params: dict[str, _Base], values: dict[str, Any]) -> None:
        for name, p in params.items():
            if name not in values:
                if p.since_version and _version(p.since_version) > _version(saved_version):
                    if isinstance(p, Parameter):
                        setattr(target, name, p.default(saved_version or "0.0.0"))
                    continue
                raise ValueError(f"Parameter missing for key {name}")
            if isinstance(p, _GroupDescriptor):
                inject(getattr(target, name), _params_of(type(p.instance)), values[name])
                check = getattr(p.instance, "validate", None)
                if check is not None:
                    check(values[name])
            else:
                setattr(target, name, values[name])

    inject(obj, _params_of(type(obj)), parameters["model"])


def validate_parameters(obj: Any, parameters: dict[str, Any]) -> str | None:
    """``None`` if ``parameters`` would load into a fresh copy of ``obj``, else the error."""
    fresh = type(obj).__new__(type(obj))
    try:
        inject_parameters(fresh, parameters, _EXTENSION_VERSION)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None
