"""Extension versions (stand-in of ``knime.extension.version``).

Fact ``param.extension_version``: ``major.minor.patch`` only; ``None`` is 0.0.0.
"""

from __future__ import annotations

from collections import namedtuple


class Version(namedtuple("Version", ["major", "minor", "patch"])):
    """``major.minor.patch``, compared as a tuple."""

    __slots__ = ()

    @classmethod
    def parse_version(cls, version_string: str | None) -> Version:
        """``None`` -> 0.0.0; anything but three non-negative integers -> ValueError."""
        if version_string is None:
            return cls(0, 0, 0)
        parts = str(version_string).split(".")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"version must be 'major.minor.patch', got {version_string!r}")
        return cls(*(int(p) for p in parts))

    def __repr__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"
