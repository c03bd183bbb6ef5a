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


@pytest.mark.parametrize("threads", [1, 2])
def test_onnx_encoder_is_repeatable_on_a_large_batch(tiny_onnx: Path, threads: int) -> None:
    """The exported neighbour sum is a fixed-order gather (no ScatterND(add), which races
    multi-threaded in onnxruntime): tokens are bit-identical run after run, on any number of
    threads, and the same for 1 and 2 threads."""
    from llamo_plugin.export.onnx_graph import reference_smiles

    batch = collate_graphs([featurize(parse_smiles(s)) for s in reference_smiles(128)])
    enc = OnnxGraphEncoder(tiny_onnx, device="cpu", num_threads=threads)
    assert enc.num_layers > 0
    first = enc.encode(batch)
    for _ in range(5):
        assert np.array_equal(enc.encode(batch), first)
    single = OnnxGraphEncoder(tiny_onnx, device="cpu", num_threads=1).encode(batch)
    np.testing.assert_allclose(first, single, atol=1e-5, rtol=0)


def test_a_graph_file_of_another_format_is_refused(tmp_path: Path) -> None:
    """Only the colour-refined export of ``llamo export-onnx`` loads; any other graph.onnx
    (e.g. the plain 7-input signature of an earlier export) stops with a clear error."""
    import onnx
    from onnx import TensorProto, helper

    from llamo_plugin.errors import CheckpointError

    node = helper.make_node("Identity", ["atom_features"], ["graph_tokens"])
    graph = helper.make_graph(
        [node],
        "plain",
        [helper.make_tensor_value_info("atom_features", TensorProto.FLOAT, ["n", 9])],
        [helper.make_tensor_value_info("graph_tokens", TensorProto.FLOAT, ["n", 9])],
    )
    path = tmp_path / "graph.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    onnx.save(model, path)
    with pytest.raises(CheckpointError, match="llamo export-onnx"):
        OnnxGraphEncoder(path, device="cpu")
