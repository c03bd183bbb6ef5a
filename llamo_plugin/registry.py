"""Where models come from: the embedded default model shipped in the package, or a directory.

A build without the embedded model (e.g. a trimmed source tree) makes
:func:`load_model_or_tiny` fall back to a tiny random model, and say so loudly (its answers are
noise; it only exercises the plumbing).
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Package-relative location of the embedded default model.
EMBEDDED_MODEL = "resources/models/default"


def embedded_model_dir() -> Path | None:
    """The embedded default model directory, or ``None`` if this build ships none."""
    path = Path(str(resources.files("llamo_plugin") / EMBEDDED_MODEL))
    return path if (path / "manifest.json").is_file() else None


def load_model_or_tiny(model_dir: str | Path | None = None, *, device: str = "cpu") -> Any:
    """Load ``model_dir``, else the embedded model, else a tiny random model (with a warning)."""
    from llamo_plugin.checkpoint.format import load_model

    if model_dir is not None:
        return load_model(model_dir, device=device)
    embedded = embedded_model_dir()
    if embedded is not None:
        return load_model(embedded, device=device)
    from llamo_plugin.model.factory import tiny_random_model

    logger.warning(
        "no embedded model in this build: using a TINY RANDOM model; "
        "its answers are meaningless and only show the pipeline working"
    )
    return tiny_random_model()
