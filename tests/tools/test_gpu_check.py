"""The prepared GPU check (``make gpu-check``, :mod:`tools.gpu_check`) in its tiny CPU mode,
run as on the GPU machine: a subprocess in which RDKit cannot be imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tools import gpu_check
from tools.gpu_check_inputs import INPUT_ARRAYS, INPUTS_PATH, input_arrays, read_inputs

ROOT = Path(__file__).resolve().parents[2]
#: ``python -m tools.gpu_check`` with RDKit made unimportable (``sys.modules[...] = None``).
WITHOUT_RDKIT = (
    "import runpy, sys; sys.modules['rdkit'] = None; "
    "sys.argv = ['tools.gpu_check', *sys.argv[1:]]; "
    "runpy.run_module('tools.gpu_check', run_name='__main__', alter_sys=True)"
)


@pytest.fixture(scope="module")
def tiny_run() -> tuple[subprocess.CompletedProcess[str], float]:
    """The tiny CPU check, CUDA hidden, RDKit unimportable; and its wall time."""
    import time

    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_RDKIT, "--tiny"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc, time.perf_counter() - t0


def test_tiny_cpu_check_prints_one_passing_json_line(
    tiny_run: tuple[subprocess.CompletedProcess[str], float],
) -> None:
    proc, seconds = tiny_run
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout[:2000]
    out: dict[str, Any] = json.loads(lines[0])
    assert out["passed"] is True and out["failures"] == [] and out["errors"] == []
    assert out["mode"] == "tiny-cpu" and out["device"] == "cpu" and out["device_name"]
    for name in ("python", "torch", "transformers", "torch_geometric", "onnxruntime"):
        assert out["versions"][name], name
    # checks 1 and 2
    assert out["hf_tokens_identical"] is True and out["graph_tokens_within_tolerance"] is True
    embedded = out["embedded"]
    assert embedded["rows"] == embedded["rows_identical"] == 6
    assert embedded["rows_by_task"] == {"description": 4, "property": 2}
    assert embedded["graph_tokens_max_abs_diff"] <= gpu_check.GRAPH_TOLERANCE
    assert embedded["graph_tokens_onnx_cpu_vs_device_max_abs_diff"] < 1e-3
    assert embedded["answer_tokens"] > 0
    # check 3: the prompt layout, forced length, the figures
    throughput = out["throughput"]
    assert throughput["prompt_tokens"] == 94 and throughput["graph_slots"] == 28
    assert throughput["shared_prefix_tokens"] == 31
    assert throughput["all_rows_full_length"] is True
    assert throughput["lm_shape"] == {
        "vocab_size": 32001,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 128,
    }
    for phase in gpu_check.PHASES:
        figures = throughput[phase]
        assert figures["mol_per_s"] > 0 and figures["tokens_per_s"] > 0
        assert figures["peak_memory_gib"] is None  # no GPU
    assert throughput["pipeline"]["molecules"] == 8
    assert throughput["pipeline_small_batches"]["rows_per_decode_batch"] == 4
    assert throughput["reference"]["molecules"] == 2
    for key in ("pipeline_mol_per_s", "reference_mol_per_s", "pipeline_tokens_per_s",
                "reference_tokens_per_s", "speedup"):  # fmt: skip
        assert out[key] > 0, key
    assert out["gpu_memory_peak_gib"] is None
    assert seconds < 120, f"the tiny check took {seconds:.0f} s"


def test_the_check_needs_no_rdkit(tiny_run: tuple[subprocess.CompletedProcess[str], float]) -> None:
    """The run above could not import RDKit; nothing in its log asked for it."""
    proc, _ = tiny_run
    assert "rdkit" not in proc.stderr.lower()


def test_random_lm_answers_never_stop_early() -> None:
    """The zero EOS row of the LM head: its logit is exactly 0, and argmax never picks it."""
    import torch

    lm = gpu_check.random_llama(gpu_check.TINY, "cpu", seed=1)
    assert all(p.dtype == torch.bfloat16 for p in lm.parameters())
    assert not lm.config.tie_word_embeddings
    ids = torch.randint(3, 32000, (4, 10))
    with torch.inference_mode():
        logits = lm(input_ids=ids).logits.float()
    assert bool((logits[..., 2] == 0).all())
    assert bool((logits.argmax(-1) != 2).all())


def test_synthetic_prompts_follow_the_official_layout() -> None:
    from llamo_plugin.prompt.assemble import GRAPH_SLOT

    prompts = gpu_check.synthetic_prompts(3, hidden=16, vocab=32001, seed=0)
    for p in prompts:
        ids = p.prompt.input_ids
        assert len(ids) == 94 and ids.count(GRAPH_SLOT) == 28
        assert ids[:31] == list(gpu_check.PROMPT_PREFIX_IDS)
        assert ids[-18:] == list(gpu_check.PROMPT_TAIL_IDS)
        assert p.graph_tokens.shape == (28, 16) and p.graph_tokens.dtype == np.float32
    assert prompts[0].prompt.input_ids[31:48] != prompts[1].prompt.input_ids[31:48]


def test_failures_name_what_differs() -> None:
    result = {
        "device": "cuda",
        "errors": [],
        "embedded": {
            "hf_tokens_identical": False,
            "rows": 48,
            "rows_identical": 47,
            "differences": [{"row": 3, "position": 17, "cpu_score_margin": 1e-6}],
            "graph_tokens_within_tolerance": False,
            "graph_tokens_max_abs_diff": 0.01,
        },
        "throughput": {"all_rows_full_length": True},
    }
    failures = gpu_check.failures_of(result)
    assert len(failures) == 2
    assert "1 of 48 rows" in failures[0] and "'position': 17" in failures[0]
    assert "0.01" in failures[1] and "tolerance" in failures[1]
    assert gpu_check.first_difference([1, 2, 3], [1, 2, 3]) is None
    assert gpu_check.first_difference([1, 2, 3], [1, 5, 3]) == 1
    assert gpu_check.first_difference([1, 2], [1, 2, 3]) == 2


def test_committed_inputs_are_current() -> None:
    """The committed inputs equal what the embedded model and RDKit give today (else:
    ``python -m tools.gpu_check --write-inputs``)."""
    pytest.importorskip("rdkit")
    from llamo_plugin.registry import load_model_or_default

    inputs = read_inputs(INPUTS_PATH)
    model = load_model_or_default(None, device="cpu")
    assert inputs.meta["model_sha256"] == model.checksum
    assert INPUTS_PATH.stat().st_size < 256 * 1024
    fresh = input_arrays(model, inputs.smiles, inputs.tasks)
    with np.load(INPUTS_PATH, allow_pickle=False) as stored:
        for name in INPUT_ARRAYS:
            assert np.array_equal(stored[name], fresh[name]), name
    assert len(inputs.recorded) == len(inputs.smiles) == 48
    assert all(inputs.recorded)
