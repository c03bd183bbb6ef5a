"""LLaMo nodes for KNIME: the ``extension_module`` of knime.yml (``nodes/llamo_knime``).

KNIME puts ``nodes/`` on the Python path and imports this package; importing it registers
the six nodes. Everything lives inside this one package so that no module name of ours
(``common``, ``extension``, ...) can clash with a module of another extension or of the
environment.
"""

from .extension import (
    IupacName,
    ModelSelector,
    MoleculeDescription,
    MoleculeQA,
    PropertyPrediction,
    ReactionPrediction,
)
from .model_port import LlamoModelObject, LlamoModelSpec, llamo_model_port_type

__all__ = [
    "IupacName",
    "LlamoModelObject",
    "LlamoModelSpec",
    "ModelSelector",
    "MoleculeDescription",
    "MoleculeQA",
    "PropertyPrediction",
    "ReactionPrediction",
    "llamo_model_port_type",
]
