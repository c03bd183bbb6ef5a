"""Export the graph tokenizer (GIN + projector) to ONNX and check it against PyTorch.

What is exported is the inference form of :class:`llamo_plugin.graph.module.GraphTokenizer`,
:class:`llamo_plugin.graph.deduplicated.DedupGraphTokenizer` (class tables in, graph tokens
``[B, T, D]`` out), checked against ``GraphTokenizer`` on PyG batches. RDKit (parsing,
features, motifs) stays outside the graph. We use the dynamo exporter
(``torch.onnx.export(dynamo=True)``), opset 18, fp32, with every size dynamic: atoms ``N``,
directed edges ``E``, molecules ``B``, the padded atom count ``A`` and the padded motif count
``M``.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

OPSET = 18

#: Molecules that exercise the awkward cases of the graph encoder.
EDGE_CASE_SMILES = (
    "C",  # single atom, no bonds, no motifs
    "[Na+].[Cl-]",  # salt: two fragments, no bonds
    "O",  # single heteroatom
    "[He]",  # noble gas
    "CC",  # one bond, no motifs
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin: motifs
    "C[N+](C)(C)C.[Br-]",  # quaternary ammonium salt
    "OC(=O)CC(O)(CC(O)=O)C(O)=O.[K+]",  # salt with motifs
    "C" * 120,  # 120-atom chain
    "C1" + "C" * 108 + "1",  # 110-atom ring
    "CC(C)C[C@H](NC(=O)[C@@H](Cc1ccccc1)NC(=O)[C@H](CC(N)=O)NC(=O)[C@@H](N)CO)"
    "C(=O)N[C@@H](CCCNC(=N)N)C(=O)N[C@@H](Cc1ccc(O)cc1)C(=O)N1CCC[C@H]1C(=O)O",
)


@dataclass(frozen=True)
class ParityReport:
    """Result of :func:`check_parity`: max |onnxruntime - PyTorch| over all batches."""

    max_abs_diff: float
    batch_sizes: tuple[int, ...]
    molecules: int
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance


def reference_smiles(limit: int = 256) -> list[str]:
    """The edge cases plus varied ChEBI-20 validation molecules bundled with the package."""
    import csv

    from llamo_plugin.retrieval import bundled_table_path

    smiles = list(EDGE_CASE_SMILES)
    with open(bundled_table_path(), newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if len(smiles) >= limit:
                break
            smiles.append(row["smiles"])
    return smiles[:limit]


def _example_batch() -> Any:
    from llamo_plugin.chem.featurize import featurize
    from llamo_plugin.chem.smiles import parse_smiles
    from llamo_plugin.graph.batching import collate_graphs

    return collate_graphs([featurize(parse_smiles(s)) for s in EDGE_CASE_SMILES[5:8]])


def onnx_input_names(num_layers: int) -> list[str]:
    """Input names of the exported graph, in order (flat; per-layer lists as ``name_k``)."""
    from llamo_plugin.graph.deduplicated import DEDUP_INPUT_NAMES, DEDUP_LAYER_INPUT_NAMES

    names = list(DEDUP_INPUT_NAMES)
    for name in DEDUP_LAYER_INPUT_NAMES:
        names += [f"{name}_{k + 1}" for k in range(num_layers)]
    return names


def export_graph_onnx(graph_module: Any, path: str | Path, opset: int = OPSET) -> Path:
    """Export ``graph_module`` (a ``GraphTokenizer``, in eval mode) to ``path`` as its
    inference form :class:`~llamo_plugin.graph.deduplicated.DedupGraphTokenizer` (fp32,
    BatchNorm folded, inputs from :mod:`llamo_plugin.graph.refinement`); returns the path.

    Large models (the 7B checkpoint's 86M-parameter projector) are written with their weights
    inline when they fit under the 2 GB protobuf limit, which they do.
    """
    import torch

    from llamo_plugin.graph.deduplicated import DedupGraphTokenizer, dedup_torch_inputs
    from llamo_plugin.graph.refinement import class_batch_inputs, refine_batch

    module = DedupGraphTokenizer(graph_module.float().eval()).eval()
    layers = module.num_layers
    batch = _example_batch()
    inputs = dedup_torch_inputs(class_batch_inputs(batch, refine_batch(batch, layers)), layers)
    dim = torch.export.Dim
    batch_dim = dim("batch", min=1)
    max_atoms, max_motifs = dim("max_atoms", min=1), dim("motifs", min=1)
    width = dim("degree", min=1)
    classes = [dim(f"classes_{k}", min=1) for k in range(layers + 1)]
    bond_classes = dim("bond_classes", min=1)

    pairs = [dim(f"messages_{k + 1}", min=1) for k in range(layers)]
    dynamic = {
        "atom_classes": {0: classes[0]},
        "bond_classes": {0: bond_classes},
        "dense_classes": {1: batch_dim, 2: max_atoms},
        "node_mask": {0: batch_dim, 1: max_atoms},
        "motifs": {0: batch_dim, 1: max_motifs},
        "motif_mask": {0: batch_dim, 1: max_motifs},
        "parents": [{0: classes[k + 1]} for k in range(layers)],
        "message_sources": [{0: pairs[k]} for k in range(layers)],
        "message_bonds": [{0: pairs[k]} for k in range(layers)],
        "messages": [{0: classes[k + 1], 1: width} for k in range(layers)],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", UserWarning)  # axis-renaming chatter of the exporter
        program = torch.onnx.export(
            module,
            (),
            kwargs=inputs,
            dynamic_shapes=dynamic,
            dynamo=True,
            opset_version=opset,
            input_names=onnx_input_names(layers),
            output_names=["graph_tokens"],
            verbose=False,
        )
    program.save(str(path))
    logger.info("exported %s in %.1fs", path, time.perf_counter() - t0)
    return path


def check_parity(
    graph_module: Any,
    onnx_path: str | Path,
    smiles: Sequence[str] | None = None,
    batch_sizes: Sequence[int] = (1, 2, 7, 32, 256),
    tolerance: float = 1e-4,
) -> ParityReport:
    """Compare onnxruntime (CPU) with PyTorch on graph tokens over batches of ``smiles``.

    Each batch size takes consecutive molecules (wrapping around), so single atoms, salts,
    molecules without motifs and 100+ atom molecules land in batches of every size.
    """
    import torch

    from llamo_plugin.backends.graph_onnx import OnnxGraphEncoder
    from llamo_plugin.chem.featurize import featurize
    from llamo_plugin.chem.smiles import parse_smiles
    from llamo_plugin.graph.batching import collate_graphs
    from llamo_plugin.graph.data import collate_pyg

    smiles = list(smiles) if smiles is not None else reference_smiles()
    graphs = [featurize(parse_smiles(s)) for s in smiles]
    encoder = OnnxGraphEncoder(onnx_path, device="cpu")
    module = graph_module.float().eval()
    worst = 0.0
    for size in batch_sizes:
        for start in range(0, len(graphs), size):
            chunk = graphs[start : start + size]
            if len(chunk) < size:  # wrap around so every batch has the requested size
                chunk = (chunk + graphs * (size // len(graphs) + 1))[:size]
            got = encoder.encode(collate_graphs(chunk))  # numpy batch -> colour refinement
            with torch.no_grad():  # the reference: the PyG batch through GraphTokenizer
                want = module(collate_pyg(chunk)).numpy()
            worst = max(worst, float(np.abs(got - want).max()))
            if size >= len(graphs):
                break
    return ParityReport(worst, tuple(batch_sizes), len(graphs), tolerance)


def export_model_dir(
    model_dir: str | Path, *, verify: bool = True, parity_molecules: int = 256
) -> tuple[Path, ParityReport | None]:
    """Export a model directory's graph tokenizer to ``<model_dir>/graph.onnx`` and record it
    in the manifest; with ``verify`` also run :func:`check_parity` (and refuse to keep a file
    that fails it)."""
    from llamo_plugin.checkpoint.format import ONNX_GRAPH, load_model, write_manifest
    from llamo_plugin.errors import CheckpointError

    model_dir = Path(model_dir)
    model = load_model(model_dir)
    target = model_dir / ONNX_GRAPH
    tmp = model_dir / (ONNX_GRAPH + ".partial")
    export_graph_onnx(model.graph, tmp)
    report = check_parity(model.graph, tmp, reference_smiles(parity_molecules)) if verify else None
    if report is not None and not report.ok:
        tmp.unlink()
        raise CheckpointError(
            f"ONNX export of {model_dir} differs from PyTorch by {report.max_abs_diff:.2e} "
            f"(> {report.tolerance:.0e}); not kept"
        )
    tmp.replace(target)
    write_manifest(model_dir)
    return target, report
