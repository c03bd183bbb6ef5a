"""The committed inputs of the GPU check (:mod:`tools.gpu_check`): molecules already featurised
and prompts already encoded for the embedded model, so that the check runs where RDKit is not
installed (the bare GPU machine of issue 17).

``tools/gpu_check_inputs.npz`` holds, for a few dozen ChEBI-20 validation molecules (the first
of ``llamo bench``'s molecules), each row's task (``description`` or ``property``: the HOMO-LUMO
gap, constrained decoding), its :class:`~llamo_plugin.records.MolGraph` (OGB atom and bond
features, edges, motif vectors), its encoded prompt (token ids with graph slots) and the
greedy answer ids the ``hf`` backend gave on the CPU where the file was written, plus a JSON
``meta`` record (the embedded model's checksum, instructions, versions). Writing it needs RDKit
and the embedded model (run from a development checkout)::

    python -m tools.gpu_check --write-inputs

Reading it (:func:`read_inputs`) needs numpy only; this module imports nothing from
``llamo_plugin`` at module level, and nothing that imports RDKit on the reading path.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Where the inputs live (committed).
INPUTS_PATH = Path(__file__).with_name("gpu_check_inputs.npz")
#: Rows per task in the committed file.
DEFAULT_ROWS = {"description": 40, "property": 8}
#: The arrays that depend only on the molecules, the prompts and the model's tokenizer (not
#: on the machine that decoded the recorded answers).
INPUT_ARRAYS = (
    "smiles",
    "tasks",
    "atom_features",
    "atom_offsets",
    "edge_index",
    "edge_offsets",
    "bond_features",
    "motifs",
    "motif_offsets",
    "has_motifs",
    "prompt_ids",
    "prompt_offsets",
)


@dataclass(frozen=True)
class CheckInputs:
    """The rows of the inputs file, as the check uses them.

    Attributes:
        smiles: the input SMILES (for reports only; never parsed by the check).
        tasks: ``description`` or ``property`` per row.
        graphs: :class:`~llamo_plugin.records.MolGraph` per row.
        prompt_ids: encoded prompt per row (``GRAPH_SLOT`` at the graph positions).
        recorded: greedy answer ids (EOS included when reached) from the writing machine's CPU.
        meta: model checksum and name, instructions, versions of the writing machine.
    """

    smiles: list[str]
    tasks: list[str]
    graphs: list[Any]
    prompt_ids: list[list[int]]
    recorded: list[list[int]]
    meta: dict[str, Any]

    def prompt(self, row: int) -> Any:
        """Row ``row``'s prompt as an :class:`~llamo_plugin.prompt.assemble.EncodedPrompt`
        (no labels: an inference prompt)."""
        from llamo_plugin.prompt.assemble import IGNORE_INDEX, EncodedPrompt

        ids = self.prompt_ids[row]
        return EncodedPrompt(list(ids), [IGNORE_INDEX] * len(ids))

    def select(self, per_task: dict[str, int] | None, shortest: bool = False) -> list[int]:
        """Row indices, in order: the first ``per_task[task]`` rows of each task (None: every
        row), or with ``shortest`` those whose recorded answers are shortest (fewest decoding
        steps: the quick CPU run)."""
        if per_task is None:
            return list(range(len(self.tasks)))
        order = range(len(self.tasks))
        if shortest:
            order = sorted(order, key=lambda i: (len(self.recorded[i]), i))
        seen: dict[str, int] = {}
        rows = []
        for i in order:
            task = self.tasks[i]
            if seen.get(task, 0) < per_task.get(task, 0):
                rows.append(i)
                seen[task] = seen.get(task, 0) + 1
        return sorted(rows)


def _concat(parts: Sequence[np.ndarray], axis: int, empty_shape: tuple[int, ...], dtype: Any):
    """Concatenate ``parts`` along ``axis`` and return ``(array, offsets [n + 1])``."""
    sizes = [p.shape[axis] for p in parts]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    if not parts or offsets[-1] == 0:
        return np.zeros(empty_shape, dtype=dtype), offsets
    return np.concatenate(parts, axis=axis).astype(dtype, copy=False), offsets


def input_arrays(model: Any, smiles: Sequence[str], tasks: Sequence[str]) -> dict[str, np.ndarray]:
    """The :data:`INPUT_ARRAYS` for ``smiles`` asked ``tasks`` (needs RDKit): featurised and
    encoded as :meth:`~llamo_plugin.model.llamo.LlamoModel.prepare` does (what the pipeline
    does per row)."""
    from llamo_plugin.chem.motifs import MOTIF_FEATURE_SIZE

    graphs, prompts = [], []
    for s, task in zip(smiles, tasks, strict=True):
        example = model.prepare(s, task_instruction(task))
        graphs.append(example.graph)
        prompts.append(np.asarray(example.prompt.input_ids, dtype=np.int64))
    atoms, atom_offsets = _concat([g.atom_features for g in graphs], 0, (0, 9), np.int64)
    edges, edge_offsets = _concat([g.edge_index for g in graphs], 1, (2, 0), np.int64)
    bonds, _ = _concat([g.bond_features for g in graphs], 0, (0, 3), np.int64)
    motif_parts = [
        g.motifs if g.motifs is not None else np.zeros((0, MOTIF_FEATURE_SIZE), np.float32)
        for g in graphs
    ]
    motifs, motif_offsets = _concat(motif_parts, 0, (0, MOTIF_FEATURE_SIZE), np.float32)
    prompt_ids, prompt_offsets = _concat(prompts, 0, (0,), np.int64)
    return {
        "smiles": np.array(list(smiles)),
        "tasks": np.array(list(tasks)),
        "atom_features": atoms,
        "atom_offsets": atom_offsets,
        "edge_index": edges,
        "edge_offsets": edge_offsets,
        "bond_features": bonds,
        "motifs": motifs,
        "motif_offsets": motif_offsets,
        "has_motifs": np.array([g.motifs is not None for g in graphs]),
        "prompt_ids": prompt_ids,
        "prompt_offsets": prompt_offsets,
    }


def task_instruction(task: str) -> str:
    """The instruction the product asks for ``task`` (its first phrasing)."""
    from llamo_plugin.tasks import DESCRIPTION, PROPERTIES, Property

    if task == "description":
        return DESCRIPTION.default_instruction
    if task == "property":
        return PROPERTIES[Property.GAP].default_instruction
    raise ValueError(f"unknown task {task!r}")


def task_decode(model: Any, task: str) -> Any:
    """The decoding the product uses for ``task``: descriptions with the model's repetition
    rules and the task's cap (as ``llamo annotate`` and ``llamo bench``), the gap constrained
    to the property answer format."""
    from llamo_plugin.tasks import DESCRIPTION, PROPERTIES, Property

    if task == "description":
        return model.config.decode.replace(max_new_tokens=DESCRIPTION.max_new_tokens)
    if task == "property":
        return PROPERTIES[Property.GAP].decode_config()
    raise ValueError(f"unknown task {task!r}")


def write_inputs(path: Path = INPUTS_PATH, rows: dict[str, int] | None = None) -> dict[str, Any]:
    """Build and write the inputs file with the embedded model (needs RDKit); returns its
    ``meta`` record. The recorded answers are decoded here by the ``hf`` backend on the CPU."""
    import platform

    import torch
    import transformers

    from llamo_plugin.backends.hf import HFBackend
    from llamo_plugin.bench import bench_smiles
    from llamo_plugin.registry import load_model_or_default

    rows = rows or DEFAULT_ROWS
    model = load_model_or_default(None, device="cpu")
    smiles = bench_smiles(sum(rows.values()))
    tasks = [task for task, n in rows.items() for _ in range(n)]
    arrays = input_arrays(model, smiles, tasks)
    inputs = _inputs_from_arrays({**arrays, **_empty_answers(len(tasks))}, {})
    recorded = decode_rows(HFBackend(model), model, inputs, _onnx_tokens(model, inputs.graphs))
    answers, answer_offsets = _concat(
        [np.asarray(r, dtype=np.int64) for r in recorded], 0, (0,), np.int64
    )
    meta = {
        "model": model.config.name,
        "model_sha256": model.checksum,
        "rows": dict(rows),
        "instructions": {task: task_instruction(task) for task in rows},
        "recorded_on": {
            "machine": platform.machine(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "command": "python -m tools.gpu_check --write-inputs",
    }
    np.savez_compressed(
        path,
        **arrays,
        answer_ids=answers,
        answer_offsets=answer_offsets,
        meta=np.array(json.dumps(meta, sort_keys=True)),
    )
    logger.info("wrote %s (%d rows, %.0f KiB)", path, len(tasks), path.stat().st_size / 1024)
    return meta


def _empty_answers(n: int) -> dict[str, np.ndarray]:
    return {"answer_ids": np.zeros(0, np.int64), "answer_offsets": np.zeros(n + 1, np.int64)}


def _onnx_tokens(model: Any, graphs: list[Any]) -> np.ndarray:
    """Graph tokens from the embedded model's ``graph.onnx`` on the CPU (the product's CPU path)."""
    from llamo_plugin.backends.graph_onnx import OnnxGraphEncoder, encode_in_buckets
    from llamo_plugin.checkpoint.format import ONNX_GRAPH
    from llamo_plugin.registry import resolve_model_dir

    encoder = OnnxGraphEncoder(resolve_model_dir(None) / ONNX_GRAPH, device="cpu")
    return encode_in_buckets(encoder, graphs)


def decode_rows(
    backend: Any,
    model: Any,
    inputs: CheckInputs,
    graph_tokens: np.ndarray,
    rows: list[int] | None = None,
) -> list[list[int]]:
    """Greedy answer ids of ``rows`` (default: all) with ``backend``, one ``generate`` call per
    task (each with the task's decoding), in row order."""
    from llamo_plugin.backends.base import PromptInputs

    rows = list(range(len(inputs.tasks))) if rows is None else rows
    out: dict[int, list[int]] = {}
    for task in dict.fromkeys(inputs.tasks[i] for i in rows):
        mine = [i for i in rows if inputs.tasks[i] == task]
        prompts = [PromptInputs(inputs.prompt(i), graph_tokens[i]) for i in mine]
        gens = backend.generate(prompts, task_decode(model, task))
        for i, g in zip(mine, gens, strict=True):
            out[i] = list(g.token_ids)
    return [out[i] for i in rows]


def read_inputs(path: Path = INPUTS_PATH) -> CheckInputs:
    """Load the inputs file (numpy only; no RDKit)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return _inputs_from_arrays(arrays, json.loads(str(arrays["meta"])) if "meta" in arrays else {})


def _split(values: np.ndarray, offsets: np.ndarray, axis: int = 0) -> list[np.ndarray]:
    index = [slice(None)] * values.ndim
    parts = []
    for a, b in itertools.pairwise(offsets):
        index[axis] = slice(int(a), int(b))
        parts.append(values[tuple(index)])
    return parts


def _inputs_from_arrays(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> CheckInputs:
    from llamo_plugin.records import MolGraph

    atoms = _split(arrays["atom_features"], arrays["atom_offsets"])
    edges = _split(arrays["edge_index"], arrays["edge_offsets"], axis=1)
    bonds = _split(arrays["bond_features"], arrays["edge_offsets"])
    motifs = _split(arrays["motifs"], arrays["motif_offsets"])
    graphs = [
        MolGraph(
            atom_features=a.copy(),
            edge_index=e.copy(),
            bond_features=b.copy(),
            motifs=m.copy() if has else None,
        )
        for a, e, b, m, has in zip(atoms, edges, bonds, motifs, arrays["has_motifs"], strict=True)
    ]
    prompts = [p.tolist() for p in _split(arrays["prompt_ids"], arrays["prompt_offsets"])]
    answers = [a.tolist() for a in _split(arrays["answer_ids"], arrays["answer_offsets"])]
    return CheckInputs(
        smiles=[str(s) for s in arrays["smiles"]],
        tasks=[str(t) for t in arrays["tasks"]],
        graphs=graphs,
        prompt_ids=prompts,
        recorded=answers,
        meta=meta,
    )
