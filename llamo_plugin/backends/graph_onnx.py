"""Graph encoders for inference: the exported ONNX graph (onnxruntime) or the PyTorch module.

Both take a :class:`~llamo_plugin.records.GraphBatch` and return graph tokens
``[B, T, D]`` as float32 numpy, so the LM backends do not care which one ran.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from llamo_plugin.records import GraphBatch

logger = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]


class GraphEncoder(Protocol):
    """``encode(batch) -> [B, T, D]`` float32 graph tokens."""

    name: str

    def encode(self, batch: GraphBatch) -> np.ndarray: ...


def onnx_providers(device: Device = "auto") -> list[str]:
    """onnxruntime providers for ``device``: CUDA first when requested (or ``auto``) and
    available (the ``onnxruntime-gpu`` package on a machine with a GPU), else CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        raise RuntimeError(
            f"device='cuda' needs onnxruntime-gpu and a GPU; available providers: {available}"
        )
    if device in ("auto", "cuda") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxGraphEncoder:
    """The exported graph tokenizer run by onnxruntime."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, device: Device = "auto", num_threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if num_threads:
            options.intra_op_num_threads = num_threads
        options.log_severity_level = 3
        self.providers = onnx_providers(device)
        self.session = ort.InferenceSession(str(path), options, providers=self.providers)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def encode(self, batch: GraphBatch) -> np.ndarray:
        from llamo_plugin.graph.batching import graph_batch_inputs

        inputs = graph_batch_inputs(batch)
        return self.session.run(None, {k: inputs[k] for k in self.input_names})[0]


class TorchGraphEncoder:
    """The PyTorch graph tokenizer (the reference path, and the fallback without ONNX)."""

    name = "torch"

    def __init__(self, graph_module: Any) -> None:
        self.module = graph_module

    def encode(self, batch: GraphBatch) -> np.ndarray:
        import torch

        from llamo_plugin.graph.batching import graph_batch_inputs, to_torch

        device = next(self.module.parameters()).device
        with torch.inference_mode():
            out = self.module(**to_torch(graph_batch_inputs(batch), device))
        return out.float().cpu().numpy()
