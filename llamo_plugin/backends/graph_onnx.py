"""Graph encoders for inference: the exported ONNX graph (onnxruntime) or the PyTorch module.

Both take a :class:`~llamo_plugin.records.GraphBatch` and return graph tokens
``[B, T, D]`` as float32 numpy, so the LM backends do not care which one ran.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from llamo_plugin.records import GraphBatch

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
    """The exported graph tokenizer run by onnxruntime.

    ``graph.onnx`` is the colour-refined inference form
    (:class:`~llamo_plugin.graph.deduplicated.DedupGraphTokenizer`, written by
    ``llamo export-onnx``): the encoder refines each batch
    (:func:`~llamo_plugin.graph.refinement.refine_batch`) and feeds the class tables. Its
    neighbour sums are gathers in a fixed order, so any number of intra-op threads gives
    bit-identical tokens (tested); by default onnxruntime uses all physical cores.
    """

    name = "onnxruntime"

    def __init__(
        self, path: str | Path, device: Device = "auto", num_threads: int | None = None
    ) -> None:
        """``num_threads``: intra-op threads (None: onnxruntime's default, every physical
        core). Raises ``CheckpointError`` for a file with other inputs (not this export)."""
        import onnxruntime as ort

        from llamo_plugin.errors import CheckpointError

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if num_threads:
            options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.providers = onnx_providers(device)
        self.session = ort.InferenceSession(str(path), options, providers=self.providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        if "atom_classes" not in self.input_names:
            raise CheckpointError(
                f"{path} is not a graph export of this version (inputs {self.input_names[:3]}"
                f"...); re-export it: `llamo export-onnx MODEL_DIR`"
            )
        self.num_layers = sum(1 for n in self.input_names if n.startswith("parents_"))

    def encode(self, batch: GraphBatch) -> np.ndarray:
        from llamo_plugin.graph.refinement import class_batch_inputs, refine_batch

        inputs = class_batch_inputs(batch, refine_batch(batch, self.num_layers))
        return self.session.run(None, {k: inputs[k] for k in self.input_names})[0]


class TorchGraphEncoder:
    """The PyTorch graph tokenizer (the reference path, and the fallback without ONNX)."""

    name = "torch"

    def __init__(self, graph_module: Any) -> None:
        self.module = graph_module

    def encode(self, batch: GraphBatch) -> np.ndarray:
        import torch

        from llamo_plugin.graph.data import batch_from_graph_batch

        device = next(self.module.parameters()).device
        with torch.inference_mode():
            out = self.module(batch_from_graph_batch(batch).to(device))
        return out.float().cpu().numpy()


def encode_in_buckets(
    encoder: GraphEncoder,
    graphs: list[Any],
    max_padded_atoms: int = 2048,
    max_molecules: int = 256,
) -> np.ndarray:
    """Graph tokens ``[B, T, D]`` for ``graphs`` (in their order), encoded in sub-batches of
    similar size.

    The projector pads every molecule of a batch to the largest one (``[B, A]``); one
    300-atom molecule among 255 small ones would make the whole batch 300 wide. Molecules are
    therefore sorted by atom count and cut into sub-batches whose padded size
    ``len(batch) * max_atoms`` stays within ``max_padded_atoms`` (a molecule larger than that
    goes alone) and that hold at most ``max_molecules`` (bounding the ``[B, T, D]`` output of
    a large projector). Results do not depend on the batching (tested).
    """
    from llamo_plugin.graph.batching import collate_graphs

    if not graphs:
        raise ValueError("no molecules to encode")
    order = sorted(range(len(graphs)), key=lambda i: graphs[i].num_atoms)
    buckets: list[list[int]] = []
    current: list[int] = []
    for i in order:  # ascending size: the newest member is the widest
        if current and (
            (len(current) + 1) * graphs[i].num_atoms > max_padded_atoms
            or len(current) >= max_molecules
        ):
            buckets.append(current)
            current = []
        current.append(i)
    buckets.append(current)
    out: np.ndarray | None = None
    for bucket in buckets:
        tokens = encoder.encode(collate_graphs([graphs[i] for i in bucket]))
        if out is None:
            out = np.empty((len(graphs), *tokens.shape[1:]), dtype=tokens.dtype)
        out[bucket] = tokens
    assert out is not None
    return out
