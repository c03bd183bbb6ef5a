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
    """The exported graph tokenizer run by onnxruntime.

    Graphs exported by this version are the colour-refined inference form
    (:class:`~llamo_plugin.graph.deduplicated.DedupGraphTokenizer`): the encoder refines each
    batch (:func:`~llamo_plugin.graph.refinement.refine_batch`) and feeds the class tables.
    Their neighbour sums are gathers in a fixed order, so any number of intra-op threads gives
    bit-identical tokens (tested); by default onnxruntime uses all physical cores.

    Files exported before (the plain 7-input ``GraphTokenizer`` signature) still load; their
    neighbour sum is a ``ScatterND(reduction="add")``, which in onnxruntime 1.31 is not
    repeatable with two or more threads (run-to-run differences up to 0.06, measured), so
    those run on one thread.
    """

    name = "onnxruntime"

    def __init__(
        self, path: str | Path, device: Device = "auto", num_threads: int | None = None
    ) -> None:
        """``num_threads``: intra-op threads (None: onnxruntime's default, every physical
        core; forced to 1 for the older scatter-based graphs)."""
        import onnxruntime as ort

        def session(threads: int | None) -> Any:
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if threads:
                options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            return ort.InferenceSession(str(path), options, providers=self.providers)

        self.providers = onnx_providers(device)
        self.session = session(num_threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.refined = "atom_classes" in self.input_names
        self.num_layers = sum(1 for n in self.input_names if n.startswith("parents_"))
        if not self.refined:  # rare: the session is built a second time, on one thread
            logger.warning(
                "%s was exported by an earlier version (scatter-add neighbour sums, one "
                "thread, no colour refinement); `llamo export-onnx MODEL_DIR` re-exports it "
                "about 3x faster",
                path,
            )
            if num_threads != 1:
                self.session = session(1)

    def encode(self, batch: GraphBatch) -> np.ndarray:
        if self.refined:
            from llamo_plugin.graph.refinement import class_batch_inputs, refine_batch

            inputs = class_batch_inputs(batch, refine_batch(batch, self.num_layers))
        else:
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
