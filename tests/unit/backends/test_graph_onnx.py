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
    assert enc.refined
    first = enc.encode(batch)
    for _ in range(5):
        assert np.array_equal(enc.encode(batch), first)
    single = OnnxGraphEncoder(tiny_onnx, device="cpu", num_threads=1).encode(batch)
    np.testing.assert_allclose(first, single, atol=1e-5, rtol=0)


def test_graph_exported_by_earlier_versions_still_runs(tiny_model: Any, tmp_path: Path) -> None:
    """A model directory's graph.onnx from before colour refinement (the plain GraphTokenizer
    signature, scatter-add neighbour sums) is still read, on one thread."""
    import torch

    from llamo_plugin.graph.batching import graph_batch_inputs, to_torch
    from llamo_plugin.graph.module import GRAPH_INPUT_NAMES

    graphs = [featurize(parse_smiles(s)) for s in ["CCO", "c1ccccc1N", "C"]]
    inputs = to_torch(graph_batch_inputs(collate_graphs(graphs)))
    dim = torch.export.Dim
    atoms, edges, batch, width = dim("n", min=1), dim("e", min=0), dim("b", min=1), dim("a")
    motifs = dim("m", min=1)
    path = tmp_path / "old.onnx"

    class PlainTensors(torch.nn.Module):  # the earlier export boundary: 7 plain tensors
        def __init__(self, tokenizer: torch.nn.Module) -> None:
            super().__init__()
            self.tokenizer = tokenizer  # not `graph`: that name is taken in the traced module

        def forward(
            self,
            atom_features: torch.Tensor,
            edge_index: torch.Tensor,
            bond_features: torch.Tensor,
            node_dense_index: torch.Tensor,
            node_mask: torch.Tensor,
            motifs: torch.Tensor,
            motif_mask: torch.Tensor,
        ) -> torch.Tensor:
            return self.tokenizer.forward_tensors(
                atom_features,
                edge_index,
                bond_features,
                node_dense_index,
                node_mask,
                motifs,
                motif_mask,
            )

    with torch.no_grad():
        torch.onnx.export(
            PlainTensors(tiny_model.graph).eval(),
            (),
            kwargs=inputs,
            dynamo=True,
            opset_version=18,
            dynamic_shapes={
                "atom_features": {0: atoms},
                "edge_index": {1: edges},
                "bond_features": {0: edges},
                "node_dense_index": {0: atoms},
                "node_mask": {0: batch, 1: width},
                "motifs": {0: batch, 1: motifs},
                "motif_mask": {0: batch, 1: motifs},
            },
            input_names=list(GRAPH_INPUT_NAMES),
            output_names=["graph_tokens"],
        ).save(str(path))
    enc = OnnxGraphEncoder(path, device="cpu", num_threads=2)
    assert not enc.refined
    assert enc.session.get_session_options().intra_op_num_threads == 1
    batch_ = collate_graphs([featurize(parse_smiles(s)) for s in ["CC(=O)O", "[Na+].[Cl-]"]])
    np.testing.assert_allclose(
        enc.encode(batch_), TorchGraphEncoder(tiny_model.graph).encode(batch_), atol=1e-4, rtol=0
    )
