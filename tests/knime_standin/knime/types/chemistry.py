"""Stand-in of KNIME's chemistry value types: SMILES cells decode to ``str`` subclasses."""

from __future__ import annotations


class SmilesValue(str):
    """A SMILES cell (string storage)."""


class SmilesAdapterValue(str):
    """A SMILES adapter cell (KNIME stores a struct; Python sees the SMILES string)."""
