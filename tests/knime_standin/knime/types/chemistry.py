"""Stand-in of the chemistry value types (shipped by KNIME's chemistry types plugin).

``SmilesValue`` is a ``str`` subclass stored as a string; ``SmilesAdapterValue`` is an
``AdapterValue`` (a ``str`` subclass carrying adapters) stored as a struct ``{"0": smiles,
"1": adapters}``. The content of the adapters is not modelled (tests keep it missing).
"""

from __future__ import annotations

from typing import Any


class AdapterValue(str):
    """A string value with adapter cells attached (``_adapters``)."""

    def __new__(cls, value: str, adapters: Any = None) -> AdapterValue:
        instance = super().__new__(cls, value)
        instance._adapters = adapters
        return instance


class SmilesValue(str):
    """A SMILES cell."""


class SmilesAdapterValue(AdapterValue):
    """A SMILES adapter cell (e.g. a SMILES column converted from another structure type)."""
