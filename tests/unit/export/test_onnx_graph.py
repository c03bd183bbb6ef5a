"""ONNX export of the graph tokenizer: parity with PyTorch and the model-directory workflow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch

from llamo_plugin.checkpoint.format import ONNX_GRAPH, load_model, read_manifest, save_model
from llamo_plugin.errors import CheckpointError
from llamo_plugin.export.onnx_graph import EDGE_CASE_SMILES, OPSET, check_parity, reference_smiles


def test_graph_has_dynamic_axes_and_pinned_opset(tiny_onnx: Path) -> None:
    from llamo_plugin.export.onnx_graph import onnx_input_names

    model = onnx.load(str(tiny_onnx))
    opsets = {o.domain: o.version for o in model.opset_import}
    assert opsets[""] == OPSET
    inputs = {i.name: i for i in model.graph.input}
    assert list(inputs) == onnx_input_names(5)
    assert list(inputs)[:6] == [
        "atom_classes",
        "bond_classes",
        "dense_classes",
        "node_mask",
        "motifs",
        "motif_mask",
    ]
    assert {"parents_5", "message_sources_5", "message_bonds_5", "messages_5"} <= set(inputs)

    def dims(name: str) -> list[Any]:
        return list(inputs[name].type.tensor_type.shape.dim)

    # Every size is symbolic (dynamic): classes per level, messages, degree, molecules,
    # padded atoms and motifs.
    assert dims("atom_classes")[0].dim_param and dims("atom_classes")[1].dim_value == 9
    assert all(d.dim_param for d in dims("dense_classes")[1:])
    assert all(d.dim_param for d in dims("node_mask"))
    assert dims("motifs")[1].dim_param
    assert all(d.dim_param for d in dims("messages_3"))
    assert dims("message_sources_2")[0].dim_param
    # No scatter with a reduction (not repeatable multi-threaded in onnxruntime 1.31).
    reductions = [
        a.s.decode()
        for n in model.graph.node
        if n.op_type.startswith("Scatter")
        for a in n.attribute
        if a.name == "reduction"
    ]
    assert set(reductions) <= {"none"}


def test_parity_on_varied_batches(tiny_model: Any, tiny_onnx: Path) -> None:
    smiles = reference_smiles(96)
    assert set(EDGE_CASE_SMILES) <= set(smiles)
    report = check_parity(tiny_model.graph, tiny_onnx, smiles, batch_sizes=(1, 5, 64, 256))
    assert report.ok, report
    assert report.max_abs_diff <= 1e-4


def test_edge_cases_in_one_batch_match_torch(tiny_model: Any, tiny_onnx: Path) -> None:
    from llamo_plugin.backends.graph_onnx import OnnxGraphEncoder

    graph = tiny_model.graph
    enc = OnnxGraphEncoder(tiny_onnx, device="cpu")
    from llamo_plugin.chem.featurize import featurize
    from llamo_plugin.chem.smiles import parse_smiles
    from llamo_plugin.graph.batching import collate_graphs
    from llamo_plugin.graph.data import collate_pyg

    mols = [featurize(parse_smiles(s)) for s in EDGE_CASE_SMILES]
    got = enc.encode(collate_graphs(mols))
    with torch.no_grad():
        want = graph(collate_pyg(mols)).numpy()
    assert got.shape == (len(EDGE_CASE_SMILES), 28, tiny_model.lm.config.hidden_size)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_export_model_dir_records_checksum(tiny_model: Any, tmp_path: Path) -> None:
    from llamo_plugin.export.onnx_graph import export_model_dir

    model_dir = tmp_path / "model"
    save_model(tiny_model, model_dir)
    before = read_manifest(model_dir)
    path, report = export_model_dir(model_dir, verify=True, parity_molecules=16)
    assert path == model_dir / ONNX_GRAPH and report is not None and report.ok
    after = read_manifest(model_dir)
    assert ONNX_GRAPH in after["files"]
    # Derived file: the model identity (and so every cache key) is unchanged.
    assert after["model_sha256"] == before["model_sha256"]
    load_model(model_dir)  # verifies every file, the ONNX graph included

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    data = bytearray((broken / ONNX_GRAPH).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (broken / ONNX_GRAPH).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"graph\.onnx"):
        load_model(broken)


def test_cli_export_onnx(tiny_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from llamo_plugin.cli.main import main

    model_dir = tmp_path / "model"
    save_model(tiny_model, model_dir)
    assert main(["export-onnx", str(model_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["onnx"].endswith(ONNX_GRAPH) and out["bytes"] > 0
    assert main(["export-onnx", str(tmp_path / "missing")]) == 1


def test_export_verify_tool_reports_parity(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m export.verify``: the tool folder's parity check of a shipped graph.onnx."""
    from export.verify import main
    from llamo_plugin.registry import embedded_model_dir

    assert main([str(embedded_model_dir()), "--molecules", "12"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["max_abs_diff"] <= report["tolerance"] == 1e-4
    assert report["molecules"] == 12
    assert main([str(Path(__file__).parent)]) == 2  # no graph.onnx there
