"""``llamo bench``: inference throughput of our pipeline against the original LLaMo path.

Everything is measured in one run, on one model and one set of molecules:

- **reference**: what the original code does, one molecule at a time: featurise, graph
  encoder in PyTorch, Hugging Face ``generate`` at batch size 1;
- **pipeline**: :class:`~llamo_plugin.pipeline.Pipeline` (onnxruntime graph encoder, length-
  bucketed batched ``hf`` decoding, dedupe; by default in worker processes, one per core,
  :mod:`llamo_plugin.workers`, started before the clock starts, as the model is loaded
  before it for the reference; their start-up time is reported), on the distinct molecules,
  on a table with 30 % repeated rows, and again on that table served from a fresh answer
  cache; and on the distinct molecules in this one process (``pipeline_in_process``). The
  distinct-molecule rate is the median of three runs (all three are reported), run between
  quarters of the reference path so both see the same machine conditions;
  ``identical_to_reference`` is the lowest of the three runs, and ``differences`` (up to 10)
  are that run's;
- **graph encoder**: molecules/s of onnxruntime vs PyTorch for calls of 1 and 256 molecules
  (:func:`~llamo_plugin.backends.graph_onnx.encode_in_buckets` groups each call's molecules
  by size, as the pipeline does; featurisation excluded, it is the same for both; colour
  refinement, part of the onnxruntime path, included); the median of three timings;
  ``graph_encoder_efficiency`` is the batch-256 rate times the encoder's matrix-multiply
  FLOPs per molecule (``graph_encoder_mflop_per_mol``, counted on the same batches:
  :func:`graph_encoder_flops`) divided by the roofline below;
- **decode efficiency**: achieved model FLOP/s while decoding (prefill included) divided by
  the fp32 matrix-multiply FLOP/s measured in the same run (the roofline: torch's 1024 x
  1024 fp32 matmul on this process's threads, the best quarter second of two seconds,
  measured before the graph encoder and again after the decode sweep, the faster of the two:
  ``roofline_gflops``; both in ``roofline_gflops_measured``), at several batch sizes (each on
  at least 32 molecules and one full batch);
  ``lm_mflop_per_mol`` is the LM's FLOPs per molecule (prompt and answer tokens) and
  ``pipeline_efficiency`` the pipeline's distinct-molecule rate times the graph encoder's
  and the LM's FLOPs per molecule, over the roofline (how close the whole pipeline runs to
  the machine's matrix-multiply speed; the shared prompt start, computed once per batch,
  is counted for every molecule, as model FLOPs are).

``llamo bench --server`` (:func:`run_server_bench`) measures the HTTP server instead:
requests/s and molecules/s of ``POST /v1/annotate`` under 1, 8 and 32 concurrent clients
(``rows_per_request`` rows each), against a server it starts on 127.0.0.1 in this process or
a running one (``--server-url``), beside the same rows annotated in this process in one call;
per level, the mean rows and requests the micro-batcher put in one model run (from the
server's ``/metrics``) and the share of rows whose columns equal the in-process ones.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchOptions:
    """What to measure."""

    molecules: int = 256
    repeat_fraction: float = 0.3
    task_instruction: str = ""
    backend: str = "hf"
    max_batch_size: int = 256
    decode_batch_sizes: tuple[int, ...] = (1, 8, 64, 256)
    graph_batches: tuple[int, ...] = (1, 256)
    max_new_tokens: int = 0  # 0: the description task's cap (256)
    seed: int = 0
    workers: int | str = "auto"  # worker processes of the pipeline ("auto": one per core)
    #: description prompts carry the 2 nearest bundled reference molecules (leave-one-out: the
    #: bench molecules are in the bundled set), as retrieval-augmented descriptions do
    retrieval: bool = False


def bench_smiles(count: int) -> list[str]:
    """``count`` distinct molecules (by canonical isomeric SMILES) from the bundled ChEBI-20
    validation reference table."""
    from llamo_plugin.chem.smiles import parse_smiles
    from llamo_plugin.errors import InvalidSmilesError
    from llamo_plugin.retrieval import bundled_table_path

    out: list[str] = []
    seen: set[str] = set()
    with open(bundled_table_path(), newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            try:
                key = parse_smiles(row["smiles"]).isomeric_smiles
            except InvalidSmilesError:
                continue
            if key not in seen:
                seen.add(key)
                out.append(row["smiles"])
            if len(out) == count:
                break
    if len(out) < count:
        raise ValueError(f"only {len(out)} distinct molecules available, asked for {count}")
    return out


def with_repeats(smiles: Sequence[str], fraction: float, seed: int) -> list[str]:
    """A table whose rows are ``smiles`` plus repeats making up ``fraction`` of all rows."""
    extra = round(len(smiles) * fraction / (1 - fraction))
    rng = random.Random(seed)
    rows = list(smiles) + [rng.choice(list(smiles)) for _ in range(extra)]
    rng.shuffle(rows)
    return rows


def matmul_roofline(seconds: float = 2.0, size: int = 1024, window: float = 0.25) -> float:
    """Measured fp32 matrix-multiply FLOP/s with the current torch thread settings: the best
    ``window``-second stretch of ``seconds`` (other tenants of a shared machine only ever
    slow a stretch down, so the best one is the closest to what the cores can do)."""
    import torch

    a = torch.randn(size, size)
    b = torch.randn(size, size)
    torch.mm(a, b)
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < window:
            torch.mm(a, b)
            n += 1
        best = max(best, 2.0 * size**3 * n / (time.perf_counter() - t0))
    return best


def lm_flops_per_token(lm: Any, context: float) -> float:
    """Forward FLOPs of one token: 2 x (weights used per token, incl. the LM head) plus the
    attention score/value products over ``context`` positions."""
    cfg = lm.config
    embed = lm.get_input_embeddings().weight.numel()
    params = sum(p.numel() for p in lm.parameters())
    # A tied table is used once per token, as the LM head; an untied input table is a lookup.
    tied = getattr(cfg, "tie_word_embeddings", False)
    matmul_params = params if tied else params - embed
    return 2.0 * matmul_params + 4.0 * cfg.num_hidden_layers * cfg.hidden_size * context


def _reference(
    model: Any, smiles: Sequence[str], instructions: Sequence[str], decode: Any
) -> tuple[list[str], float]:
    """The original path: one molecule at a time, PyTorch graph encoder, batch-1 generate."""
    texts = []
    t0 = time.perf_counter()
    for s, instruction in zip(smiles, instructions, strict=True):
        example = model.prepare(s, instruction)
        texts.append(model.generate([example], decode)[0].text)
    return texts, time.perf_counter() - t0


class _GraphFlopCounter:
    """A graph encoder that computes nothing useful but counts the matrix-multiply FLOPs the
    exported graph performs: :class:`~llamo_plugin.graph.deduplicated.DedupGraphTokenizer`
    (the module ``graph.onnx`` is exported from) run under ``torch``'s ``FlopCounterMode``
    on the same colour-refined batches. Products of weights with weights (the folded
    queries), which onnxruntime folds into constants when the session starts, are counted too
    (well under 1% of the total)."""

    name = "flop-counter"

    def __init__(self, graph_module: Any) -> None:
        from llamo_plugin.graph.deduplicated import DedupGraphTokenizer

        self.module = DedupGraphTokenizer(graph_module).eval()
        self.flops = 0

    def encode(self, batch: Any) -> Any:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        from llamo_plugin.graph.deduplicated import dedup_torch_inputs
        from llamo_plugin.graph.refinement import class_batch_inputs, refine_batch

        layers = self.module.num_layers
        named = class_batch_inputs(batch, refine_batch(batch, layers))
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            out = self.module(**dedup_torch_inputs(named, layers))
        self.flops += counter.get_total_flops()
        return out.numpy()


def graph_encoder_flops(model: Any, graphs: Sequence[Any], call_size: int) -> float:
    """Matrix-multiply FLOPs of encoding ``graphs`` in calls of ``call_size`` molecules,
    bucketed as :func:`~llamo_plugin.backends.graph_onnx.encode_in_buckets` does."""
    from llamo_plugin.backends.graph_onnx import encode_in_buckets

    counter = _GraphFlopCounter(model.graph)
    for i in range(0, len(graphs), call_size):
        encode_in_buckets(counter, list(graphs[i : i + call_size]))
    return float(counter.flops)


def _graph_encoder_rates(
    model: Any, onnx_encoder: Any, graphs: Sequence[Any], batch_sizes: Sequence[int]
) -> dict[str, float]:
    from llamo_plugin.backends.graph_onnx import TorchGraphEncoder, encode_in_buckets

    graphs = list(graphs)
    encoders = {"onnxruntime": onnx_encoder, "torch": TorchGraphEncoder(model.graph)}
    rates: dict[str, float] = {}
    for size in batch_sizes:
        # Each call gets `size` molecules; inside it, encode_in_buckets groups them by size
        # (as the pipeline does), so one large molecule does not pad the whole batch.
        calls = [graphs[i : i + size] for i in range(0, len(graphs), size)]
        for name, encoder in encoders.items():
            encode_in_buckets(encoder, calls[0])  # warm-up
            reps = max(1, math.ceil(256 / len(graphs)))
            timings = []
            for _ in range(3):  # the median of three timings (this VM's speed varies)
                t0 = time.perf_counter()
                for _ in range(reps):
                    for c in calls:
                        encode_in_buckets(encoder, c)
                timings.append(time.perf_counter() - t0)
            rates[f"{name}_batch{size}"] = reps * len(graphs) / statistics.median(timings)
    return rates


def _decode_flop_rates(
    model: Any,
    pipeline: Any,
    smiles: Sequence[str],
    instructions: Sequence[str],
    sizes: Sequence[int],
    decode: Any,
) -> tuple[dict[str, float], float]:
    """Achieved LM FLOP/s while decoding (prefill included) for each decode batch size, and
    the LM FLOPs per molecule of the largest run."""
    from llamo_plugin.backends.hf import HFBackend

    per_size: dict[str, float] = {}
    per_molecule = (0, 0.0)  # (molecules, FLOPs per molecule) of the largest run
    all_inputs = pipeline._prepare_chunk(
        [(pipeline_parse(s), i) for s, i in zip(smiles, instructions, strict=True)]
    )
    for size in sizes:
        # Each size decodes at least 32 molecules, and never fewer than one full batch.
        inputs = all_inputs[: max(size, min(32, len(all_inputs)))]
        backend = HFBackend(model, max_batch_size=size)
        t0 = time.perf_counter()
        gens = backend.generate(inputs, decode)
        seconds = time.perf_counter() - t0
        flops = 0.0
        for inp, gen in zip(inputs, gens, strict=True):
            prompt = len(inp.prompt.input_ids)
            total = prompt + len(gen.token_ids)
            flops += total * lm_flops_per_token(model.lm, total / 2)
        per_size[str(size)] = flops / seconds
        if len(inputs) > per_molecule[0]:
            per_molecule = (len(inputs), flops / len(inputs))
    return per_size, per_molecule[1]


def _decode_efficiency(flop_rates: dict[str, float], roofline: float) -> dict[str, Any]:
    """Decode FLOP/s by batch size over the roofline, and the best of them."""
    per_size = {size: rate / roofline for size, rate in flop_rates.items()}
    best = max(per_size, key=lambda k: per_size[k])
    return {
        "efficiency_by_batch_size": per_size,
        "best_batch_size": int(best),
        "decode_efficiency": per_size[best],
    }


def _start_workers(
    model: Any,
    model_dir: Path | None,
    onnx_path: Path | None,
    options: BenchOptions,
    result: dict[str, Any],
) -> Any:
    """The pipeline's worker processes (None: it runs in this process), started and ready;
    records their number, threads and start-up seconds in ``result``."""
    import torch

    from llamo_plugin.workers import start_workers

    # The workers load graph.onnx from the model directory: only where that is the file the
    # bench's own pipeline runs.
    same_graph = (
        model_dir is not None and onnx_path is not None and onnx_path.parent == Path(model_dir)
    )
    t0 = time.perf_counter()
    pool = start_workers(
        model,
        model_dir if same_graph else None,
        options.workers,
        graph="onnx",
        backend=options.backend,
    )
    if pool is None:
        result.update(workers=1, threads_per_worker=torch.get_num_threads(), worker_start_s=0.0)
    else:
        result.update(
            workers=pool.workers,
            threads_per_worker=pool.spec.threads,
            worker_start_s=time.perf_counter() - t0,
        )
    return pool


def pipeline_parse(smiles: str) -> Any:
    from llamo_plugin.chem.smiles import parse_smiles

    return parse_smiles(smiles)


def run_bench(
    model: Any,
    onnx_path: Path | None,
    options: BenchOptions,
    model_dir: Path | None = None,
) -> dict[str, Any]:
    """Run every measurement; returns the JSON-able result. ``options.backend == "vllm"``
    runs the pipeline with the vllm backend (``model_dir`` needed); the reference path and the
    decode-efficiency sweep always use transformers."""
    import torch

    from llamo_plugin.backends.graph_onnx import OnnxGraphEncoder
    from llamo_plugin.backends.hf import HFBackend
    from llamo_plugin.cache import AnswerCache
    from llamo_plugin.chem.featurize import featurize
    from llamo_plugin.pipeline import Pipeline
    from llamo_plugin.tasks import DESCRIPTION

    instruction = options.task_instruction or DESCRIPTION.default_instruction
    decode = model.config.decode.replace(
        max_new_tokens=options.max_new_tokens or DESCRIPTION.max_new_tokens
    )
    smiles = bench_smiles(options.molecules)
    repeated = with_repeats(smiles, options.repeat_fraction, options.seed)
    per_smiles = dict.fromkeys(smiles, instruction)
    if options.retrieval:
        from llamo_plugin.retrieval import NearestNeighbours, with_retrieved

        k = model.config.retrieval.neighbours
        texts, _ = with_retrieved(
            NearestNeighbours.from_table(), smiles, instruction, k, leave_out="skeleton"
        )
        per_smiles = dict(zip(smiles, texts, strict=True))

    def ins(rows: Sequence[str]) -> list[str]:
        return [per_smiles[s] for s in rows]

    result: dict[str, Any] = {
        "model": model.config.name,
        "model_sha256": model.checksum,
        "molecules": len(smiles),
        "rows_with_repeats": len(repeated),
        "torch_threads": torch.get_num_threads(),
        "task": "description",
        "decode": decode.to_dict(),
        "retrieval": options.retrieval,
        "mean_prompt_tokens": statistics.fmean(
            len(model.prepare(s, per_smiles[s]).prompt.input_ids) for s in smiles
        ),
    }
    with tempfile.TemporaryDirectory() as tmp:
        if onnx_path is None:
            from llamo_plugin.export.onnx_graph import export_graph_onnx

            onnx_path = export_graph_onnx(model.graph, Path(tmp) / "graph.onnx")
            result["onnx"] = "exported for this run"
        onnx = OnnxGraphEncoder(onnx_path, device="cpu")

        backend: Any = HFBackend(model, max_batch_size=options.max_batch_size)
        if options.backend == "vllm":
            from llamo_plugin.backends.vllm import VLLMBackend

            if model_dir is None:
                raise ValueError("the vllm backend needs a model directory")
            backend = VLLMBackend(model_dir, model, max_num_seqs=options.max_batch_size)
        result["backend"] = options.backend
        pool = _start_workers(model, model_dir, onnx_path, options, result)
        try:
            pipe = Pipeline(model, graph_encoder=onnx, backend=backend, workers=pool)
            local = Pipeline(model, graph_encoder=onnx, backend=backend)

            def timed(p: Any) -> tuple[list[Any], float]:
                t0 = time.perf_counter()
                rows = p.run(smiles, ins(smiles), task="description", decode=decode)
                return rows, len(smiles) / (time.perf_counter() - t0)

            # The reference path runs in four segments with the pipeline runs between them,
            # so that a slow stretch of the machine (this VM's speed varies by +-15% from
            # minute to minute) slows both sides instead of only one.
            logger.info("reference path (%d molecules one at a time), pipeline runs between "
                        "its quarters", len(smiles))  # fmt: skip
            quarter = max(1, math.ceil(len(smiles) / 4))
            ref_texts: list[str] = []
            ref_s = 0.0
            runs: list[list[Any]] = []
            pipe_rates: list[float] = []
            in_process_rate = 0.0
            for i, start in enumerate(range(0, len(smiles), quarter)):
                part = smiles[start : start + quarter]
                texts, seconds = _reference(model, part, ins(part), decode)
                ref_texts += texts
                ref_s += seconds
                if i == 1 and pool is not None:
                    in_process_rate = timed(local)[1]
                elif len(pipe_rates) < 3:
                    rows, rate = timed(pipe)
                    runs.append(rows)
                    pipe_rates.append(rate)
            while len(pipe_rates) < 3:  # fewer than four quarters (tiny benches)
                rows, rate = timed(pipe)
                runs.append(rows)
                pipe_rates.append(rate)
            ref_rate = len(smiles) / ref_s
            pipe_rate = statistics.median(pipe_rates)
            if pool is None:
                in_process_rate = pipe_rate
            # Identity is that of the least identical run, and so are the differences listed.
            matches = [
                sum(r.text == t for r, t in zip(run, ref_texts, strict=True)) for run in runs
            ]
            worst = min(range(len(runs)), key=lambda i: matches[i])
            same = matches[worst]
            differing = [
                {"smiles": s, "reference": t, "pipeline": r.text, "run": worst + 1}
                for s, r, t in zip(smiles, runs[worst], ref_texts, strict=True)
                if r.text != t
            ]

            logger.info("pipeline: %d rows with repeats, fresh cache", len(repeated))
            cache = AnswerCache(Path(tmp) / "cache.sqlite")
            pipe_cached = Pipeline(
                model, graph_encoder=onnx, backend=backend, cache=cache, workers=pool
            )
            t0 = time.perf_counter()
            pipe_cached.run(repeated, ins(repeated), task="description", decode=decode)
            repeat_rate = len(repeated) / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            second = pipe_cached.run(repeated, ins(repeated), task="description", decode=decode)
            hit_rate = len(repeated) / (time.perf_counter() - t0)
            cache.close()
            assert all(r.cached for r in second)
            copy_bias = model.config.retrieval.copy_bias
            if options.retrieval and copy_bias:  # what users get (the reference has no rule)
                t0 = time.perf_counter()
                pipe.run(smiles, ins(smiles), task="description",
                         decode=model.config.retrieval.decode_for(decode))  # fmt: skip
                result["pipeline_with_copy_bias_mol_per_s"] = len(smiles) / (
                    time.perf_counter() - t0
                )
        finally:
            if pool is not None:
                pool.close()

        logger.info("graph encoder rates")
        graphs = [featurize(pipeline_parse(s)) for s in smiles]
        rooflines = [matmul_roofline()]
        graph_rates = _graph_encoder_rates(model, onnx, graphs, options.graph_batches)
        graph_call = max(options.graph_batches)
        graph_flops = graph_encoder_flops(model, graphs, graph_call) / len(graphs)
        graph_rate = graph_rates[f"onnxruntime_batch{graph_call}"]
        logger.info("decode efficiency")
        sizes = tuple(b for b in options.decode_batch_sizes if b <= len(smiles))
        decode_rates, lm_flops = _decode_flop_rates(model, pipe, smiles, ins(smiles), sizes, decode)
        rooflines.append(matmul_roofline())
    # The machine's speed drifts between the two measurements; the faster one is the closer
    # to what the cores can do (a slow window would overstate every efficiency).
    roofline = max(rooflines)
    efficiency = _decode_efficiency(decode_rates, roofline)

    result.update(
        reference_mol_per_s=ref_rate,
        pipeline_mol_per_s=pipe_rate,
        pipeline_runs_mol_per_s=pipe_rates,
        speedup_vs_reference=pipe_rate / ref_rate,
        pipeline_in_process_mol_per_s=in_process_rate,
        speedup_vs_reference_in_process=in_process_rate / ref_rate,
        pipeline_with_repeats_rows_per_s=repeat_rate,
        speedup_vs_reference_with_repeats=repeat_rate / ref_rate,
        cache_hit_mol_per_s=hit_rate,
        graph_encoder_mol_per_s=graph_rate,
        graph_encoder=graph_rates,
        graph_encoder_mflop_per_mol=graph_flops / 1e6,
        graph_encoder_efficiency=graph_flops * graph_rate / roofline,
        roofline_gflops=roofline / 1e9,
        roofline_gflops_measured=[r / 1e9 for r in rooflines],
        lm_mflop_per_mol=lm_flops / 1e6,
        pipeline_efficiency=pipe_rate * (graph_flops + lm_flops) / roofline,
        identical_to_reference=same / len(smiles),
        differences=differing[:10],
        **efficiency,
    )
    return result


# ------------------------------------------------------------------- llamo bench --server


@dataclass(frozen=True)
class ServerBenchOptions:
    """What ``llamo bench --server`` measures: ``molecules`` distinct molecules annotated with
    ``tasks`` through ``POST /v1/annotate``, ``rows_per_request`` per request, by each number
    of concurrent ``clients`` in turn; beside them, the same rows in this process through
    :class:`~llamo_plugin.annotate.Annotator` in one call, before the first level and after
    each (each level is compared with the runs just before and after it)."""

    molecules: int = 64
    clients: tuple[int, ...] = (1, 8, 32)
    rows_per_request: int = 1
    tasks: tuple[str, ...] = ("description",)
    #: the question of the qa task
    question: str = ""
    #: a running server to measure ("" = start one on 127.0.0.1 in this process)
    url: str = ""


def _batch_metrics(client: Any) -> tuple[float, float, float]:
    """(pipeline runs, rows, requests) the server's micro-batcher has run so far, from its
    ``/metrics`` (zeros when the server does not expose them to this client)."""
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get("/metrics")
    if response.status_code != 200:
        return 0.0, 0.0, 0.0
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name in (
                "llamo_batch_rows_count",
                "llamo_batch_rows_sum",
                "llamo_batch_requests_sum",
            ):
                values[sample.name] = float(sample.value)
    return (
        values.get("llamo_batch_rows_count", 0.0),
        values.get("llamo_batch_rows_sum", 0.0),
        values.get("llamo_batch_requests_sum", 0.0),
    )


def _client_level(
    url: str,
    token: str | None,
    body: dict[str, Any],
    smiles: Sequence[str],
    options: Any,
    clients: int,
    local: dict[str, list[Any]],
) -> dict[str, Any]:
    """``clients`` threads sending the rows in requests of ``rows_per_request`` until none
    is left; throughput, and how many rows equal the in-process answers."""
    import threading

    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    step = options.rows_per_request
    todo = list(range(0, len(smiles), step))
    lock = threading.Lock()
    answered: dict[int, dict[str, list[Any]]] = {}
    failures: list[str] = []
    requests = 0

    def client_loop() -> None:
        nonlocal requests
        with httpx.Client(base_url=url, headers=headers, timeout=600) as http:
            while True:
                with lock:
                    if not todo:
                        return
                    start = todo.pop(0)
                rows = list(smiles[start : start + step])
                r = http.post("/v1/annotate", json={**body, "smiles": rows})
                with lock:
                    requests += 1
                    if r.status_code == 200 and r.json()["rows"] == len(rows):
                        answered[start] = r.json()["columns"]
                    else:
                        failures.append(f"{r.status_code}: {r.text[:200]}")

    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        before = _batch_metrics(http)
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client_loop) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - t0
        after = _batch_metrics(http)
    molecules = sum(len(cols["llamo_error"]) for cols in answered.values())
    same = sum(
        all(cols[key][i] == local[key][start + i] for key in local)
        for start, cols in answered.items()
        for i in range(len(cols["llamo_error"]))
    )
    runs, rows, jobs = (a - b for a, b in zip(after, before, strict=True))
    return {
        "clients": clients,
        "requests": requests,
        "failed_requests": len(failures),
        "failures": failures[:5],
        "molecules": molecules,
        "seconds": seconds,
        "requests_per_s": (requests - len(failures)) / seconds,
        "molecules_per_s": molecules / seconds,
        "model_runs": int(runs),
        "mean_rows_per_run": rows / runs if runs else None,
        "mean_requests_per_run": jobs / runs if runs else None,
        "identical_to_in_process": same / molecules if molecules else None,
    }


def run_server_bench(
    pipe: Any, options: ServerBenchOptions, *, token: str | None = None
) -> dict[str, Any]:
    """Measure ``/v1/annotate`` under each number of concurrent clients, and the same rows in
    this process. ``pipe``: the pipeline of the in-process run, and of the server when
    ``options.url`` is empty (the server then runs on 127.0.0.1 in this process, its clients
    in threads beside it; the caller closes the pipeline); ``token``: the bearer token of
    ``options.url``."""
    from llamo_plugin.annotate import AnnotateOptions, Annotator
    from llamo_plugin.serve.config import ServeConfig
    from llamo_plugin.serve.server import background_server

    smiles = bench_smiles(options.molecules)
    annotate_options = AnnotateOptions(tasks=options.tasks, question=options.question)
    body = {"tasks": list(options.tasks), "question": options.question}
    annotator = Annotator(pipe, annotate_options)
    # One-time costs (lazy imports, first calls, the first batch of each size) paid here: a
    # first run of the 64 molecules took 2.0 mol/s, the runs after it 17.5-18.1 (session 8).
    annotator.annotate(smiles)
    in_process: list[float] = []  # molecules/s, before the first level and after each

    def local_run() -> dict[str, list[Any]]:
        t0 = time.perf_counter()
        out = annotator.annotate(smiles)
        in_process.append(len(smiles) / (time.perf_counter() - t0))
        return out

    local = local_run()
    result: dict[str, Any] = {
        "mode": "server",
        "model": pipe.model.config.name,
        "model_sha256": pipe.model_checksum,
        "tasks": list(options.tasks),
        "molecules": len(smiles),
        "rows_per_request": options.rows_per_request,
    }
    config = ServeConfig(port=0, max_rows=max(1_000, options.rows_per_request))
    with contextlib.ExitStack() as stack:
        url = options.url
        if not url:
            server = stack.enter_context(
                background_server(lambda: pipe, config, close_pipeline=False)
            )
            url = server.url
            result["server"] = f"started in this process on {url} (clients in threads)"
        else:
            result["server"] = url
        levels = []
        for clients in options.clients:
            logger.info("%d concurrent client(s), %d molecules", clients, len(smiles))
            level = _client_level(url, token, body, smiles, options, clients, local)
            local_run()
            # against the in-process runs just before and after it (the machine's speed drifts)
            level["in_process_mol_per_s"] = statistics.mean(in_process[-2:])
            level["speedup_vs_in_process"] = level["molecules_per_s"] / statistics.mean(
                in_process[-2:]
            )
            levels.append(level)
    result["in_process"] = {
        "molecules": len(smiles),
        "runs_mol_per_s": in_process,
        "molecules_per_s": statistics.median(in_process),
    }
    result["levels"] = levels
    return result
