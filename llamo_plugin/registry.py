"""Where models come from: the embedded default model shipped in the package, or a directory.

A model is the model asked for, or an error: a build whose embedded model is missing or
incomplete fails with :class:`~llamo_plugin.errors.CheckpointError` (a random model would fill
the output with noise that looks like answers). The tiny random model of
:func:`llamo_plugin.model.factory.tiny_random_model` is for tests and explicit requests only.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Package-relative location of the embedded default model.
EMBEDDED_MODEL = "resources/models/default"


def embedded_model_dir() -> Path:
    """The embedded default model directory (loading it checks that it is complete)."""
    return Path(str(resources.files("llamo_plugin") / EMBEDDED_MODEL))


def resolve_model_dir(model_dir: str | Path | None) -> Path:
    """``model_dir``, or the embedded model's directory when None."""
    return Path(model_dir) if model_dir is not None else embedded_model_dir()


def load_model_or_default(
    model_dir: str | Path | None = None, *, device: str = "cpu", **load: Any
) -> Any:
    """Load ``model_dir``, else the embedded model; ``CheckpointError`` when it is missing,
    incomplete or corrupted. ``load``: options of
    :func:`~llamo_plugin.checkpoint.format.load_model` (e.g. ``lm_weights``)."""
    from llamo_plugin.checkpoint.format import load_model
    from llamo_plugin.errors import CheckpointError

    path = resolve_model_dir(model_dir)
    try:
        return load_model(path, device=device, **load)
    except CheckpointError as exc:
        if model_dir is None:
            raise CheckpointError(
                f"the embedded model of this installation is unusable ({exc}); reinstall "
                "llamo-plugin or give a model directory"
            ) from None
        raise
