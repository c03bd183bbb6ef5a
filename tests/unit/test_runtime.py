"""runtime: which graph encoder a pipeline gets."""

from __future__ import annotations

import onnxruntime as ort

from llamo_plugin.runtime import _onnx_can_run


def test_onnx_runs_where_onnxruntime_has_a_provider() -> None:
    assert _onnx_can_run("cpu")
    # a GPU machine with the CPU-only onnxruntime falls back to the PyTorch encoder on CUDA
    assert _onnx_can_run("cuda") == ("CUDAExecutionProvider" in ort.get_available_providers())
