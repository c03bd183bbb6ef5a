"""The prepared GPU check (issue 17): one command, one JSON line on stdout.

    python -m tools.gpu_check          # or: make gpu-check

It needs only what a bare GPU machine has (Python with torch, transformers, torch-geometric,
onnxruntime on the CPU) plus this checkout: no RDKit (the molecules come featurised in
``tools/gpu_check_inputs.npz``, :mod:`tools.gpu_check_inputs`), no vLLM, no network. Three
checks:

1. **Greedy tokens, CUDA = CPU** (the embedded model): the ``hf`` backend
   (:class:`~llamo_plugin.backends.hf.HFBackend`, our batched decode with row compaction) on
   CUDA and on the CPU, fed the same graph tokens (``graph.onnx`` on the CPU, the product's
   CPU path), must give the same token ids for every row (description answers with the
   model's repetition rules; HOMO-LUMO gaps with constrained decoding). A difference is
   reported with the CPU's score margin between the two tokens at the first differing
   step (a near-zero margin is a floating-point tie, a large one a bug). Also reported, not
   required: the rows that stay identical when CUDA computes its own graph tokens
   (``end_to_end_rows_identical``) and the CPU rows equal to the answers recorded where the
   inputs file was written (``cpu_rows_matching_recorded``; another machine, torch and
   thread count).
2. **Graph tokens, CUDA = CPU within 1e-4**: the PyTorch graph tokenizer on CUDA vs on the CPU
   (max absolute difference; onnxruntime CPU vs CUDA reported too).
3. **Throughput on a Llama-2-7B-shaped LM with random bf16 weights** (hidden 4096, 32 layers,
   32 heads, FFN 11008, vocabulary 32001, untied head; built directly on the GPU, no weights
   to bring): 94-token prompts laid out as LLaMo's description prompt (31 shared tokens of
   the chat template and system message, 17 SMILES tokens, 28 graph slots filled with random
   graph tokens, 18 instruction tokens), 128 new tokens for every molecule. Our pipeline's
   decode (``HFBackend.generate``: shared-prefix prefill, grouped prefill, batched greedy
   loop on the fast Llama decoder) on 256 molecules in one batch (and in batches of 64, and
   with the backend's default 2 GiB KV budget) vs the reference path (transformers'
   ``generate`` at batch 1, :meth:`~llamo_plugin.model.llamo.LlamoModel.generate_with_graph_tokens`,
   as ``llamo bench`` measures it) on a few molecules, per-molecule rates extrapolated. Every
   answer runs the full 128 tokens because the LM head's EOS row is zero: the EOS logit is
   exactly 0 while the largest of the other 32,000 random logits is positive (checked:
   ``all_rows_full_length``).

Without CUDA (or with ``--tiny``) the same code runs with a tiny LM shape and fewer rows, on
the CPU, in about half a minute: CI keeps the command working (``tests/tools/test_gpu_check.py``).
On the CPU the "device" is the CPU, so checks 1 and 2 compare the CPU with itself there.

Exit status 0 when checks 1 and 2 pass, every answer of check 3 ran its full length and
nothing raised; 1 otherwise (the reasons are logged and listed under ``failures``; a part that
raised leaves its key null and the other part still runs). Logs go to stderr; stdout carries
the one JSON line, also when the check fails.

The inputs of checks 1 and 2 are rewritten (after the embedded model changes) with
``python -m tools.gpu_check --write-inputs``, where RDKit is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tools.gpu_check_inputs import INPUTS_PATH, CheckInputs, decode_rows, read_inputs, task_decode

logger = logging.getLogger("tools.gpu_check")

#: Check 2's tolerance (max absolute difference of graph tokens, CUDA vs CPU).
GRAPH_TOLERANCE = 1e-4
GIB = float(1 << 30)

#: LLaMo's description prompt for aspirin with the Llama-2 tokenizer (``<pad>`` = 32000): the
#: shared start (BOS, ``[INST] <<SYS>>``, the system message, ``<</SYS>>``), 17 SMILES tokens,
#: 28 graph slots, then the instruction and ``[/INST]``: 94 tokens. Measured with
#: ``encode_conversation`` and the Llama-2 vocabulary of the test suite.
PROMPT_PREFIX_IDS = (
    1, 518, 25580, 29962, 3532, 14816, 29903, 6778, 13, 1576, 1494, 338, 263, 14983, 1546, 263,
    12758, 5199, 322, 319, 29902, 20255, 29889, 13, 29966, 829, 14816, 29903, 6778, 13, 13,
)  # fmt: skip
PROMPT_TAIL_IDS = (
    6527, 366, 2367, 592, 263, 11473, 975, 1493, 310, 445, 13206, 29883, 1297, 29973, 518, 29914,
    25580, 29962,
)  # fmt: skip
SMILES_TOKENS = 17
GRAPH_SLOTS = 28
#: The timed parts of check 3 (each with its own GPU memory peak).
PHASES = ("pipeline", "pipeline_small_batches", "pipeline_default_kv_budget", "reference")


@dataclass(frozen=True)
class LMShape:
    """A Llama LM's shape (what :func:`random_llama` builds)."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int


#: The official LLaMo checkpoint's LM: Llama-2-7B with LLaMo's ``<pad>`` row.
LLAMA2_7B = LMShape(32001, 4096, 32, 32, 11008)
#: The CPU stand-in: same vocabulary and prompts, a 2-layer width-64 LM.
TINY = LMShape(32001, 64, 2, 4, 128)


@dataclass(frozen=True)
class CheckOptions:
    """What to run (defaults: the GPU run; :func:`tiny_options` for the CPU)."""

    tiny: bool = False
    embedded_rows: dict[str, int] | None = None  # None: every row of the inputs file
    molecules: int = 256  # pipeline molecules (check 3)
    batch_size: int = 256  # pipeline decode batch (check 3), capped by free GPU memory
    small_batch_size: int = 64  # a second pipeline run in batches of this size
    reference_molecules: int = 4  # batch-1 reference molecules (check 3)
    new_tokens: int = 128
    seed: int = 0
    inputs: Path = INPUTS_PATH


def tiny_options(**overrides: Any) -> CheckOptions:
    """The CPU run: the embedded model on the 4 description and 2 gap rows with the shortest
    recorded answers; the tiny LM on 8 + 2 molecules of 16 new tokens."""
    base = CheckOptions(
        tiny=True,
        embedded_rows={"description": 4, "property": 2},
        molecules=8,
        batch_size=8,
        small_batch_size=4,
        reference_molecules=2,
        new_tokens=16,
    )
    return CheckOptions(**{**asdict(base), **overrides})


# ------------------------------------------------------------------------------ environment
def versions() -> dict[str, Any]:
    """Versions of Python, the libraries the check runs on, and this checkout's commit."""
    from importlib import metadata

    import torch

    out: dict[str, Any] = {"python": platform.python_version(), "cuda": torch.version.cuda}
    for name in ("torch", "transformers", "tokenizers", "torch_geometric", "onnxruntime", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
        out["llamo_plugin_commit"] = commit.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        out["llamo_plugin_commit"] = None
    return out


def device_name(device: str) -> str:
    """The GPU's name, or the CPU model."""
    import torch

    if device == "cuda":
        return torch.cuda.get_device_name(0)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


class _MemoryPeak:
    """Peak GPU memory allocated by torch inside a ``with`` block (None on the CPU)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.gib: float | None = None

    def __enter__(self) -> _MemoryPeak:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc: Any) -> None:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
            self.gib = torch.cuda.max_memory_allocated() / GIB


# ------------------------------------------------------------------ checks 1-2: embedded model
def first_difference(a: Sequence[int], b: Sequence[int]) -> int | None:
    """First position where two id lists differ (the shorter one's length if one is a
    prefix of the other), None when equal."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def score_margin(
    model: Any,
    prompt: Any,
    graph_tokens: np.ndarray,
    generated: list[int],
    decode: Any,
    a: int,
    b: int,
) -> float:
    """CPU score of token ``a`` minus that of token ``b`` after ``generated`` (the logits with
    the decode's repetition penalty and n-gram ban applied, as the greedy loop does; not the
    answer-format mask). Near 0: the two devices met a floating-point tie."""
    import torch

    from llamo_plugin.backends.hf.greedy import apply_repetition_penalty, ban_repeated_ngrams
    from llamo_plugin.prompt.assemble import collate_prompts

    with torch.inference_mode():
        batch = collate_prompts([prompt], model.tokenizer.pad_token_id, padding_side="left")
        embeds = model.inputs_embeds(batch, torch.from_numpy(graph_tokens[None]))
        done = torch.tensor([generated], dtype=torch.long)
        if generated:
            embeds = torch.cat([embeds, model.lm.get_input_embeddings()(done)], dim=1)
        logits = model.lm(inputs_embeds=embeds).logits[:, -1, :].float()
        scores = apply_repetition_penalty(logits, done, decode.repetition_penalty)
        scores = ban_repeated_ngrams(scores, done, decode.no_repeat_ngram_size)
    return float(scores[0, a] - scores[0, b])


def check_embedded(device: str, options: CheckOptions) -> dict[str, Any]:
    """Checks 1 and 2 on the embedded model and the committed inputs."""
    from llamo_plugin.backends.graph_onnx import (
        OnnxGraphEncoder,
        TorchGraphEncoder,
        encode_in_buckets,
    )
    from llamo_plugin.backends.hf import HFBackend
    from llamo_plugin.checkpoint.format import ONNX_GRAPH
    from llamo_plugin.registry import load_model_or_default, resolve_model_dir

    inputs: CheckInputs = read_inputs(options.inputs)
    rows = inputs.select(options.embedded_rows, shortest=options.tiny)
    cpu_model = load_model_or_default(None, device="cpu")
    if cpu_model.checksum != inputs.meta.get("model_sha256"):
        raise RuntimeError(
            f"{options.inputs} was written for model {inputs.meta.get('model_sha256')}, the "
            f"embedded model is {cpu_model.checksum}: run `python -m tools.gpu_check "
            "--write-inputs` where RDKit is installed and commit the file"
        )
    model = cpu_model if device == "cpu" else load_model_or_default(None, device=device)

    def tokens(encoder: Any) -> np.ndarray:
        """Graph tokens of the chosen rows, at their row index (other rows zero)."""
        chosen = encode_in_buckets(encoder, [inputs.graphs[i] for i in rows])
        out = np.zeros((len(inputs.graphs), *chosen.shape[1:]), np.float32)
        out[rows] = chosen
        return out

    onnx = OnnxGraphEncoder(resolve_model_dir(None) / ONNX_GRAPH, device="cpu")
    onnx_tokens = tokens(onnx)
    cpu_tokens = tokens(TorchGraphEncoder(cpu_model.graph))
    device_tokens = tokens(TorchGraphEncoder(model.graph))
    graph_diff = float(np.abs(device_tokens - cpu_tokens).max())
    onnx_diff = float(np.abs(device_tokens - onnx_tokens).max())
    logger.info("graph tokens: max |%s - cpu| = %.3g, |%s - onnxruntime cpu| = %.3g",
                device, graph_diff, device, onnx_diff)  # fmt: skip

    t0 = time.perf_counter()
    cpu_ids = decode_rows(HFBackend(cpu_model), cpu_model, inputs, onnx_tokens, rows)
    cpu_s = time.perf_counter() - t0
    backend = HFBackend(model)
    _sync(device)
    t0 = time.perf_counter()
    device_ids = decode_rows(backend, model, inputs, onnx_tokens, rows)
    _sync(device)
    device_s = time.perf_counter() - t0
    own_ids = decode_rows(backend, model, inputs, device_tokens, rows)

    differences = []
    for k, row in enumerate(rows):
        pos = first_difference(cpu_ids[k], device_ids[k])
        if pos is None:
            continue
        entry: dict[str, Any] = {
            "row": row,
            "task": inputs.tasks[row],
            "smiles": inputs.smiles[row],
            "position": pos,
            "cpu_token": cpu_ids[k][pos] if pos < len(cpu_ids[k]) else None,
            "device_token": device_ids[k][pos] if pos < len(device_ids[k]) else None,
        }
        # the margin of the first few (those reported): a CPU forward per difference
        both = entry["cpu_token"] is not None and entry["device_token"] is not None
        if both and len(differences) < 5:
            entry["cpu_score_margin"] = score_margin(
                cpu_model, inputs.prompt(row), onnx_tokens[row], cpu_ids[k][:pos],
                task_decode(cpu_model, inputs.tasks[row]), entry["cpu_token"],
                entry["device_token"],
            )  # fmt: skip
        differences.append(entry)
    same = len(rows) - len(differences)
    recorded = sum(cpu_ids[k] == inputs.recorded[row] for k, row in enumerate(rows))
    own = sum(a == b for a, b in zip(cpu_ids, own_ids, strict=True))
    logger.info("greedy tokens: %d/%d rows identical (%s vs cpu)", same, len(rows), device)
    return {
        "model": cpu_model.config.name,
        "model_sha256": cpu_model.checksum,
        "inputs": options.inputs.name,
        "rows": len(rows),
        "rows_by_task": {
            t: sum(inputs.tasks[i] == t for i in rows) for t in dict.fromkeys(inputs.tasks)
        },
        "answer_tokens": sum(len(ids) for ids in cpu_ids),
        "hf_tokens_identical": not differences,
        "rows_identical": same,
        "differences": differences[:5],
        "end_to_end_rows_identical": own,
        "cpu_rows_matching_recorded": recorded,
        "graph_tokens_max_abs_diff": graph_diff,
        "graph_tokens_within_tolerance": graph_diff <= GRAPH_TOLERANCE,
        "graph_tolerance": GRAPH_TOLERANCE,
        "graph_tokens_onnx_cpu_vs_device_max_abs_diff": onnx_diff,
        "cpu_decode_s": cpu_s,
        "device_decode_s": device_s,
    }


# ----------------------------------------------------------------------- check 3: throughput
def random_llama(shape: LMShape, device: str, seed: int) -> Any:
    """A ``LlamaForCausalLM`` of ``shape`` with random bf16 weights, built on ``device``
    directly (no CPU copy of a 7B model): normal(0, 0.02) matrices, unit norms (set here, not
    left to transformers' initialisation), the EOS row of the (untied) LM head zero."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=shape.vocab_size,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_attention_heads,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        hidden_act="silu",
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=shape.vocab_size - 1,
    )
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            lm = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    lm.config.dtype = torch.bfloat16
    lm.eval().requires_grad_(False)
    with torch.no_grad():
        for param in lm.parameters():
            if param.ndim == 1:
                param.fill_(1.0)
            else:
                param.normal_(0.0, 0.02)
        lm.lm_head.weight[config.eos_token_id].zero_()
    return lm


def wordlevel_tokenizer(vocab_size: int) -> Any:
    """A real (``tokenizers`` word-level) tokenizer over ``vocab_size`` ids with Llama-2's
    special ids (``<unk>`` 0, ``<s>`` 1, ``</s>`` 2) and ``<pad>`` last, as LLaMo sets it up:
    what :class:`~llamo_plugin.model.llamo.LlamoModel` needs to decode ids to text."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"t{i}": i for i in range(3, vocab_size - 1)})
    vocab["<pad>"] = vocab_size - 1
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="<unk>")),
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    )


def llamo_around(lm: Any, tokenizer: Any) -> Any:
    """A :class:`~llamo_plugin.model.llamo.LlamoModel` around ``lm`` whose graph part is
    never used (graph tokens come in ready): built on the meta device, so it costs nothing."""
    import torch

    from llamo_plugin.config import LlamoConfig, ProjectorConfig
    from llamo_plugin.model.llamo import LlamoModel

    config = LlamoConfig(
        name="random-llama2-7b-shape",
        projector=ProjectorConfig(output_size=lm.config.hidden_size),
    )
    with torch.device("meta"):
        return LlamoModel(config, lm, tokenizer).eval()


def synthetic_prompts(count: int, hidden: int, vocab: int, seed: int) -> list[Any]:
    """``count`` 94-token prompts in the layout of :data:`PROMPT_PREFIX_IDS` (random SMILES
    tokens per molecule) with random graph tokens ``[28, hidden]`` (std 0.02, as the
    embeddings)."""
    from llamo_plugin.backends.base import PromptInputs
    from llamo_plugin.prompt.assemble import GRAPH_SLOT, IGNORE_INDEX, EncodedPrompt

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        smiles = rng.integers(3, vocab - 1, SMILES_TOKENS).tolist()
        ids = [*PROMPT_PREFIX_IDS, *smiles, *[GRAPH_SLOT] * GRAPH_SLOTS, *PROMPT_TAIL_IDS]
        tokens = (rng.standard_normal((GRAPH_SLOTS, hidden)) * 0.02).astype(np.float32)
        out.append(PromptInputs(EncodedPrompt(ids, [IGNORE_INDEX] * len(ids)), tokens))
    return out


def _rates(rows: int, new_tokens: int, seconds: float, peak: float | None) -> dict[str, Any]:
    return {
        "molecules": rows,
        "seconds": seconds,
        "mol_per_s": rows / seconds,
        "tokens_per_s": rows * new_tokens / seconds,
        "peak_memory_gib": peak,
    }


def check_throughput(device: str, options: CheckOptions) -> dict[str, Any]:
    """Check 3: our pipeline's decode vs the batch-1 reference on a random Llama."""
    import torch

    from llamo_plugin.backends.hf.backend import HFBackend, kv_bytes_per_position
    from llamo_plugin.config import DecodeConfig

    shape = TINY if options.tiny else LLAMA2_7B
    t0 = time.perf_counter()
    lm = random_llama(shape, device, options.seed)
    model = llamo_around(lm, wordlevel_tokenizer(shape.vocab_size))
    _sync(device)
    init_s = time.perf_counter() - t0
    weights_gib = sum(p.numel() * p.element_size() for p in lm.parameters()) / GIB
    logger.info("random %s LM on %s in %.1f s (%.1f GiB)", shape, device, init_s, weights_gib)

    prompts = synthetic_prompts(
        options.molecules, shape.hidden_size, shape.vocab_size, options.seed
    )
    length = len(prompts[0].prompt.input_ids)
    positions = length + options.new_tokens
    per_row = kv_bytes_per_position(lm) * positions
    batch = min(options.batch_size, options.molecules)
    if device == "cuda":
        free = torch.cuda.mem_get_info()[0]
        fits = int((free - 8 * GIB) // per_row)  # 8 GiB left for activations and logits
        if fits < batch:
            logger.warning("%d rows of KV cache fit in free GPU memory: batch %d -> %d",
                           fits, batch, max(1, fits))  # fmt: skip
            batch = max(1, fits)
    decode = DecodeConfig(max_new_tokens=options.new_tokens)

    def pipeline(max_batch: int, budget: bool = False) -> tuple[dict[str, Any], list[Any]]:
        """``HFBackend.generate`` on every prompt: batches of ``max_batch`` rows, or with the
        backend's default KV budget (``budget``)."""
        if budget:
            backend = HFBackend(model)
        else:
            backend = HFBackend(model, max_batch_size=max_batch,
                                max_batch_tokens=max_batch * positions)  # fmt: skip
        rows_per_batch = min(backend.max_batch_size, backend.max_batch_tokens // positions)
        sample = prompts if not budget else prompts[: min(len(prompts), 64)]
        with _MemoryPeak(device) as peak:
            t0 = time.perf_counter()
            gens = backend.generate(sample, decode)
            _sync(device)
            seconds = time.perf_counter() - t0
        rates = _rates(len(sample), options.new_tokens, seconds, peak.gib)
        rates["rows_per_decode_batch"] = rows_per_batch
        logger.info("pipeline, %d rows per decode batch: %.2f mol/s", rows_per_batch,
                    rates["mol_per_s"])  # fmt: skip
        return rates, gens

    # Warm-up, untimed: both paths on the full answer length (kernel and allocator choices
    # for every cache length; on the CPU, oneDNN's bf16 kernels are built per shape).
    HFBackend(model, max_batch_size=8).generate(prompts[:8], decode)
    first = prompts[0]
    model.generate_with_graph_tokens(
        [first.prompt], torch.from_numpy(first.graph_tokens[None]), decode
    )

    main, gens = pipeline(batch)
    small, _ = pipeline(min(options.small_batch_size, batch))
    default_budget, _ = pipeline(batch, budget=True)

    reference_ids = []
    with _MemoryPeak(device) as peak:
        t0 = time.perf_counter()
        for p in prompts[: options.reference_molecules]:
            out = model.generate_with_graph_tokens(
                [p.prompt], torch.from_numpy(p.graph_tokens[None]), decode
            )
            reference_ids.append(out[0].token_ids)
        _sync(device)
        ref_s = time.perf_counter() - t0
    reference = _rates(len(reference_ids), options.new_tokens, ref_s, peak.gib)
    logger.info("reference, batch 1: %.3f mol/s", reference["mol_per_s"])

    full = all(len(g.token_ids) == options.new_tokens for g in gens) and all(
        len(ids) == options.new_tokens for ids in reference_ids
    )
    same = sum(list(g.token_ids) == list(r) for g, r in zip(gens, reference_ids, strict=False))
    return {
        "lm_shape": asdict(shape),
        "dtype": "bfloat16",
        "weights_gib": weights_gib,
        "init_s": init_s,
        "prompt_tokens": length,
        "graph_slots": GRAPH_SLOTS,
        "shared_prefix_tokens": len(PROMPT_PREFIX_IDS),
        "new_tokens": options.new_tokens,
        "decode": "greedy, no repetition rules (LLaMo's official decoding)",
        "forced_length": "LM head's EOS row is zero: EOS logit exactly 0, below the largest "
        "random logit, so no answer stops early",
        "all_rows_full_length": full,
        "kv_cache_mib_per_row": per_row / (1 << 20),
        "pipeline": main,
        "pipeline_small_batches": small,
        "pipeline_default_kv_budget": default_budget,
        "reference": reference,
        "speedup": main["mol_per_s"] / reference["mol_per_s"],
        "reference_rows_identical_to_pipeline": f"{same}/{len(reference_ids)}",
    }


# ---------------------------------------------------------------------------------- the run
def failures_of(result: dict[str, Any]) -> list[str]:
    """Why the run fails (empty: it passes): checks 1 and 2, and any part that raised."""
    out = list(result.get("errors", []))
    embedded = result.get("embedded")
    if embedded:
        if not embedded["hf_tokens_identical"]:
            out.append(
                f"greedy tokens differ between {result['device']} and cpu in "
                f"{embedded['rows'] - embedded['rows_identical']} of {embedded['rows']} rows "
                f"(first differences, with the cpu score margin: {embedded['differences']})"
            )
        if not embedded["graph_tokens_within_tolerance"]:
            out.append(
                f"graph tokens differ by {embedded['graph_tokens_max_abs_diff']:.3g} between "
                f"{result['device']} and cpu (tolerance {GRAPH_TOLERANCE})"
            )
    throughput = result.get("throughput")
    if throughput and not throughput["all_rows_full_length"]:
        out.append("some answers of the random LM stopped before the token count")
    return out


def run_check(options: CheckOptions, device: str) -> dict[str, Any]:
    """Every check; a part that raises is recorded under ``errors``, the others still run."""
    import torch

    t_start = time.perf_counter()
    result: dict[str, Any] = {
        "check": "llamo gpu-check",
        "mode": f"tiny-{device}" if options.tiny else "full",
        "device": device,
        "device_name": device_name(device),
        "versions": versions(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "torch_threads": torch.get_num_threads(),
        "errors": [],
    }
    for key, part in (("embedded", check_embedded), ("throughput", check_throughput)):
        try:
            result[key] = part(device, options)
        except Exception as exc:
            logger.exception("%s check failed", key)
            result["errors"].append(f"{key}: {type(exc).__name__}: {exc}")
            result[key] = None
        if device == "cuda":
            torch.cuda.empty_cache()
    embedded, throughput = result["embedded"] or {}, result["throughput"] or {}
    peaks = [throughput[k]["peak_memory_gib"] for k in PHASES if throughput.get(k)]
    peaks = [p for p in peaks if p is not None]  # None on the CPU
    result.update(
        hf_tokens_identical=embedded.get("hf_tokens_identical"),
        graph_tokens_within_tolerance=embedded.get("graph_tokens_within_tolerance"),
        pipeline_mol_per_s=(throughput.get("pipeline") or {}).get("mol_per_s"),
        reference_mol_per_s=(throughput.get("reference") or {}).get("mol_per_s"),
        pipeline_tokens_per_s=(throughput.get("pipeline") or {}).get("tokens_per_s"),
        reference_tokens_per_s=(throughput.get("reference") or {}).get("tokens_per_s"),
        speedup=throughput.get("speedup"),
        gpu_memory_peak_gib=max(peaks) if peaks else None,
    )
    result["failures"] = failures_of(result)
    result["passed"] = not result["failures"]
    result["elapsed_s"] = time.perf_counter() - t_start
    return result


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout (file descriptor 1, libraries included) to stderr,
    so that stdout carries only the JSON line."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tools.gpu_check``: run the check (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.gpu_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--tiny", action="store_true", help="tiny LM shape and few rows (the default without CUDA)"
    )
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even with CUDA")
    parser.add_argument("--inputs", type=Path, default=INPUTS_PATH, help="the inputs file")
    parser.add_argument(
        "--write-inputs",
        action="store_true",
        help="write the inputs file with the embedded model (needs RDKit), then exit",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s"
    )
    if args.write_inputs:
        from tools.gpu_check_inputs import write_inputs

        write_inputs(args.inputs)
        return 0
    with _stdout_to_stderr():
        import torch

        device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
        tiny = args.tiny or device == "cpu"
        options = tiny_options(inputs=args.inputs) if tiny else CheckOptions(inputs=args.inputs)
        logger.info("gpu check on %s (%s shape)", device, "tiny" if tiny else "Llama-2-7B")
        result = run_check(options, device)
        for failure in result["failures"]:
            logger.error("FAILED: %s", failure)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    if result["passed"]:
        logger.info("passed in %.0f s", result["elapsed_s"])
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
