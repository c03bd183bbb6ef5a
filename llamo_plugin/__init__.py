"""LLaMo (Park et al., NeurIPS 2024) as a library: molecule + instruction -> greedy answer.

The package is layered by pipeline stage; each sub-package is named after its step:

- ``chem``        SMILES parsing, OGB features, functional-group motifs (numpy + RDKit, no torch)
- ``graph``       batching, GIN encoder, multi-level projector (torch)
- ``prompt``      Llama-2 chat template, tokenisation, graph-slot expansion and splicing
- ``model``       LLaMo = graph module + any Hugging Face causal LM; greedy generation
- ``checkpoint``  our model-directory format and the official-checkpoint converter
- ``cli``         the ``llamo`` command

Importing this package imports nothing heavy (no torch, no RDKit); the helpers below load
their dependencies when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from llamo_plugin.model.llamo import LlamoModel


def load_model(path: str, *, device: str = "cpu", verify: bool = True) -> LlamoModel:
    """Load a model directory in our format (see ``llamo_plugin.checkpoint.format``)."""
    from llamo_plugin.checkpoint.format import load_model as _load

    return _load(path, device=device, verify=verify)


def __getattr__(name: str) -> Any:  # lazy public names
    if name == "LlamoModel":
        from llamo_plugin.model.llamo import LlamoModel

        return LlamoModel
    raise AttributeError(name)
