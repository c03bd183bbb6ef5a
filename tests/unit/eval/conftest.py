"""Fixtures of the evaluation tests: WordNet (set up by the project's WordNet step)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def wordnet_reader() -> Any:
    """NLTK WordNet reader over the set-up folder; skips if WordNet is not set up."""
    from llamo_plugin.eval.wordnet import WordNetUnavailableError, load_wordnet

    try:
        return load_wordnet()
    except WordNetUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def scibert_vocab(shared_dir: Path) -> Path:
    """The SciBERT uncased vocabulary from ``../shared``."""
    path = shared_dir / "data" / "scibert-vocab" / "vocab.txt"
    if not path.is_file():
        pytest.skip("SciBERT vocabulary not in ../shared")
    return path
