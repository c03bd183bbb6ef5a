"""Options every command that loads a model for answering shares (``annotate``, ``serve``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--device``, ``--backend``, ``--cache`` and ``--no-cache``."""
    parser.add_argument("--model", type=Path, default=None, help="default: the embedded model")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--backend", choices=["hf", "vllm"], default="hf")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="answer cache (default ~/.cache/llamo-plugin/answers.sqlite)",
    )
    parser.add_argument("--no-cache", action="store_true")
