"""Graph encoders: onnxruntime and PyTorch give the same tokens; provider selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llamo_plugin.backends.graph_onnx import OnnxGraphEncoder, TorchGraphEncoder, onnx_providers
from llamo_plugin.chem.featurize import featurize
from llamo_plugin.chem.smiles import parse_smiles
from llamo_plugin.graph.batching import collate_graphs


def test_onnx_and_torch_encoders_agree(tiny_model: Any, tiny_onnx: Path) -> None:
    batch = collate_graphs(
        [featurize(parse_smiles(s)) for s in ["CCO", "c1ccccc1N", "[Na+].[Cl-]", "C"]]
    )
    a = OnnxGraphEncoder(tiny_onnx, device="cpu", num_threads=1).encode(batch)
    b = TorchGraphEncoder(tiny_model.graph).encode(batch)
    assert a.dtype == np.float32 and a.shape == b.shape == (4, 28, 64)
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)


def test_cpu_provider_by_default_without_gpu() -> None:
    import onnxruntime as ort

    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert onnx_providers("auto") == ["CPUExecutionProvider"]
        with pytest.raises(RuntimeError, match="onnxruntime-gpu"):
            onnx_providers("cuda")
    else:  # pragma: no cover - GPU machines
        assert onnx_providers("auto")[0] == "CUDAExecutionProvider"


def test_bucketed_encoding_equals_one_batch(tiny_model: Any) -> None:
    from llamo_plugin.backends.graph_onnx import encode_in_buckets

    smiles = ["C" * 40, "CCO", "c1ccccc1N", "C", "[Na+].[Cl-]", "CC(=O)Oc1ccccc1C(=O)O"] * 3
    graphs = [featurize(parse_smiles(s)) for s in smiles]
    enc = TorchGraphEncoder(tiny_model.graph)
    whole = enc.encode(collate_graphs(graphs))
    bucketed = encode_in_buckets(enc, graphs, max_padded_atoms=64)
    np.testing.assert_allclose(bucketed, whole, atol=1e-5, rtol=0)


def test_onnx_encoder_is_repeatable_on_a_large_batch(tiny_onnx: Path) -> None:
    """Multi-threaded onnxruntime ScatterND(add) races (see OnnxGraphEncoder); the default
    encoder must give bit-identical tokens run after run."""
    from export.onnx_graph import reference_smiles

    batch = collate_graphs([featurize(parse_smiles(s)) for s in reference_smiles(128)])
    enc = OnnxGraphEncoder(tiny_onnx, device="cpu")
    first = enc.encode(batch)
    for _ in range(5):
        assert np.array_equal(enc.encode(batch), first)
