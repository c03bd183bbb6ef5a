"""Typed errors raised at the package's boundaries.

Per-molecule problems (``InvalidSmilesError``) are data: callers turn them into a per-row
status. The others are configuration or file problems and should stop the job with a clear
message.
"""

from __future__ import annotations

from typing import Any

#: Longest quote of an input in a message (a 100,000-character SMILES must not fill a cell).
QUOTE_MAX_CHARS = 200


def brief(value: Any, limit: int = QUOTE_MAX_CHARS) -> str:
    """``repr(value)`` cut to about ``limit`` characters, saying how long the original was.

    >>> brief("C" * 1000, 10)
    "'CCCCCCCCC… (1,000 characters)"
    """
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value):,} characters)" if isinstance(value, str) else ""
    return text[: limit - 1] + "…" + size


class LlamoError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidSmilesError(LlamoError, ValueError):
    """A SMILES string that RDKit cannot parse, or an empty one.

    Attributes:
        smiles: the offending input (may be ``None`` for a missing cell).
        reason: short machine-friendly reason: ``"empty"``, ``"missing"``, ``"unparseable"``,
            ``"bad_character"`` or ``"too_large"`` (over the length or atom-count cap).
        detail: optional words on what exactly is wrong.
    """

    def __init__(self, smiles: Any, reason: str, detail: str = "") -> None:
        self.smiles = smiles
        self.reason = reason
        self.detail = detail
        what = f"{reason}, {detail}" if detail else reason
        super().__init__(f"invalid SMILES ({what}): {brief(smiles)}")


class ConfigError(LlamoError, ValueError):
    """A configuration with unknown keys, wrong types or inconsistent values."""


class TokenCountMismatchError(LlamoError, ValueError):
    """The number of graph slots in a prompt batch differs from the graph tokens supplied."""


class CheckpointError(LlamoError):
    """A model directory or checkpoint that is missing, corrupted or of the wrong shape."""


class UntrustedPickleError(CheckpointError):
    """A pickled checkpoint whose loading needs arbitrary code execution, without opt-in."""


class CancelledError(LlamoError):
    """The caller asked to stop (KNIME's cancel button, Ctrl-C handling in the CLI)."""


class BackendUnavailableError(LlamoError):
    """An inference backend whose optional dependency (vllm, onnxruntime-gpu, ...) or device
    is missing."""
