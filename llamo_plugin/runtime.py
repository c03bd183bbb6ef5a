"""Build the runtime that answers: a :class:`~llamo_plugin.pipeline.Pipeline` for a model
(directory or the embedded default), its graph encoder, LM backend, answer cache and worker
processes; and the main loop those worker processes run.

This module sits above :mod:`llamo_plugin.pipeline` and :mod:`llamo_plugin.workers` (neither
imports the other or this one), so the import graph has no cycle.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any, Literal

from llamo_plugin.backends.base import LMBackend
from llamo_plugin.backends.graph_onnx import GraphEncoder
from llamo_plugin.cache import AnswerCache
from llamo_plugin.errors import CancelledError
from llamo_plugin.pipeline import Pipeline
from llamo_plugin.workers import WorkerSpec

logger = logging.getLogger(__name__)


def load_pipeline(
    model_dir: str | Path | None = None,
    *,
    device: str = "auto",
    graph: Literal["auto", "onnx", "torch"] = "auto",
    backend: Literal["hf", "vllm"] = "hf",
    cache_path: str | Path | None = None,
    workers: int | Literal["auto"] = 1,
    graph_threads: int | None = None,
    **pipeline_kwargs: Any,
) -> Pipeline:
    """A :class:`Pipeline` for a model directory (None: the embedded default model).

    ``graph="auto"`` uses the model directory's ``graph.onnx`` when present and onnxruntime
    can run it on the device (CUDA needs ``onnxruntime-gpu``), else the PyTorch encoder on
    the model's device. ``workers``: worker processes for the
    prepare + decode stages (:mod:`llamo_plugin.workers`; ``"auto"``: one per core for a small
    LM on CPU, else 1; 1: everything in this process), each with ``cores // workers``
    threads; the ``hf`` backend only. ``graph_threads``: onnxruntime intra-op threads (None:
    its default, every core). Close the pipeline (or use it as a context manager) to stop
    the workers.
    """
    from llamo_plugin.backends.graph_onnx import OnnxGraphEncoder
    from llamo_plugin.checkpoint.format import ONNX_GRAPH
    from llamo_plugin.registry import load_model_or_default, resolve_model_dir
    from llamo_plugin.workers import start_workers

    torch_device = _torch_device(device)
    # vLLM loads the LM itself: here only the embedding table for the prompt embeddings.
    lm_weights = "embeddings" if backend == "vllm" else "all"
    model = load_model_or_default(model_dir, device=torch_device, lm_weights=lm_weights)
    path = resolve_model_dir(model_dir)
    onnx_file = path / ONNX_GRAPH
    encoder: GraphEncoder | None = None
    has_onnx = onnx_file is not None and onnx_file.is_file()
    if graph == "auto" and has_onnx and not _onnx_can_run(torch_device):
        # e.g. a GPU machine with the CPU-only onnxruntime: the PyTorch encoder runs on the GPU
        logger.info(
            "graph encoder: PyTorch on %s (onnxruntime has no provider for it)", torch_device
        )
        has_onnx = False
    if graph == "onnx" or (graph == "auto" and has_onnx):
        if onnx_file is None or not onnx_file.is_file():
            raise FileNotFoundError(f"no {ONNX_GRAPH} in {path}; run `llamo export-onnx {path}`")
        encoder = OnnxGraphEncoder(
            onnx_file, device="cuda" if torch_device == "cuda" else "cpu", num_threads=graph_threads
        )
    lm_backend: LMBackend | None = None
    if backend == "vllm":
        from llamo_plugin.backends.vllm import VLLMBackend

        if path is None:
            raise FileNotFoundError("the vllm backend needs a model directory")
        lm_backend = VLLMBackend(path, model)
    pool = start_workers(model, path, workers, graph=graph, backend=backend, threads=graph_threads)
    cache = AnswerCache(cache_path) if cache_path is not None else None
    return Pipeline(
        model,
        graph_encoder=encoder,
        backend=lm_backend,
        cache=cache,
        workers=pool,
        **pipeline_kwargs,
    )


def _onnx_can_run(torch_device: str) -> bool:
    """Whether onnxruntime is installed with a provider for ``torch_device`` (CUDA needs
    ``onnxruntime-gpu``)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return torch_device != "cuda" or "CUDAExecutionProvider" in ort.get_available_providers()


def _torch_device(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    return device


def serve_worker(conn: Any, spec: WorkerSpec, stop: Any) -> None:  # pragma: no cover
    """A pipeline worker's main loop (runs in the child process started by
    :class:`~llamo_plugin.workers.WorkerPool`; coverage does not see it): load the model,
    then answer ``(items, decode)`` requests with :meth:`Pipeline.answer_items`."""
    try:
        import torch

        torch.set_num_threads(spec.threads)
        pipe = load_pipeline(
            spec.model_dir, device="cpu", graph=spec.graph, graph_threads=spec.threads
        )
        _warm_up(pipe)
        conn.send(("ready", pipe.model_checksum))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        items, decode = request
        try:
            gens = pipe.answer_items(items, decode, should_stop=stop.is_set)
            conn.send(("ok", gens))
        except CancelledError:
            conn.send(("cancelled", None))
        except BaseException:
            conn.send(("error", traceback.format_exc()))


def _warm_up(pipe: Any) -> None:  # pragma: no cover - subprocess
    """One small request through every stage, so that one-time costs (lazy imports, the
    first onnxruntime and torch calls) are paid at start-up, not by the first chunk (on the
    2-core VM, preparing a first chunk of 128 molecules took 0.68 s, later ones 0.45 s)."""
    from llamo_plugin.chem.smiles import parse_smiles

    items = [(parse_smiles(s), "Describe this molecule.") for s in ("CCO", "c1ccccc1C(=O)O")]
    pipe.answer_items(items, pipe.model.config.decode.replace(max_new_tokens=4))
