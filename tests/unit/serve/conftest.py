"""The serve tests' shared parts: the embedded model, loaded once, and a few rows.

Every server in these tests is real (uvicorn on 127.0.0.1, an ephemeral port) and shares this
one pipeline through its own micro-batcher (``close_pipeline=False``); the tests run one
server's requests at a time, so the pipeline is never used by two batchers at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

#: Valid molecules (distinct), from ChEBI-20 validation and simple ones.
MOLECULES = [
    "CCO",
    "c1ccccc1",
    "CC(=O)Oc1ccccc1C(=O)O",
    "OC(=O)CCC(=O)O",
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
    "C1CCCCC1O",
    "NCC(=O)O",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
]
#: Rows a pipeline must answer with a status, not an error.
BAD = ["not a smiles", "", None, "C" * 300]


@pytest.fixture(scope="session")
def pipeline() -> Iterator[Any]:
    """The embedded model's pipeline (hf backend, no answer cache: every answer is decoded)."""
    from llamo_plugin.runtime import load_pipeline

    pipe = load_pipeline(None)
    yield pipe
    pipe.close()
