"""``llamo serve [--model DIR] [--host 127.0.0.1] [--port 8000] [--token-file FILE]``.

Loads one model (:func:`llamo_plugin.runtime.load_pipeline`) and answers HTTP requests with
it until SIGTERM or Ctrl-C: the batch endpoint ``POST /v1/annotate``, OpenAI's
``POST /v1/chat/completions`` and ``GET /v1/models``, ``GET /health`` and ``GET /metrics``
(:mod:`llamo_plugin.serve`). Binds 127.0.0.1 unless told otherwise; any other address needs a
bearer token, read from ``--token-file`` or ``$LLAMO_SERVE_TOKEN`` (never from the command
line, never logged). Exit status: 0 after a graceful stop, 2 for unusable options, model or
address. FastAPI and uvicorn (the ``serve`` extra) are imported only when the server starts.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from llamo_plugin.cli.model_options import add_model_arguments

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from llamo_plugin.serve.auth import TOKEN_ENV
    from llamo_plugin.serve.config import ServeConfig
    from llamo_plugin.workers import workers_arg

    d = ServeConfig()
    add_model_arguments(parser)
    parser.add_argument(
        "--workers",
        type=workers_arg,
        default=1,
        help="worker processes for the model (a number, or auto: one per core for a small "
        "model on CPU; default 1: in this process)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: the usable cores)"
    )
    parser.add_argument(
        "--host",
        default=d.host,
        help="address to listen on (default 127.0.0.1: this machine only; any other address "
        "needs a token)",
    )
    parser.add_argument("--port", type=int, default=d.port, help="0: any free port (logged)")
    parser.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help=f"file holding the bearer token clients must send (or set ${TOKEN_ENV}; "
        "required unless bound to a loopback address)",
    )
    parser.add_argument(
        "--reference-table",
        type=Path,
        default=None,
        help="annotated table for retrieval and nearest neighbours (default: the bundled "
        "ChEBI-20 validation set); clients cannot choose another",
    )
    parser.add_argument("--max-rows", type=int, default=d.max_rows, help="SMILES per request")
    parser.add_argument(
        "--max-body-mb", type=float, default=d.max_body_bytes / 2**20, help="request body size"
    )
    parser.add_argument("--max-smiles-chars", type=int, default=d.max_smiles_chars)
    parser.add_argument("--max-atoms", type=int, default=d.max_atoms)
    parser.add_argument(
        "--max-new-tokens", type=int, default=d.max_new_tokens, help="largest chat max_tokens"
    )
    parser.add_argument(
        "--batch-rows", type=int, default=d.batch_rows, help="most rows per model run"
    )
    parser.add_argument(
        "--batch-wait-ms",
        type=float,
        default=d.batch_wait_ms,
        help="how long a request waits for others to share its run when the model is idle",
    )
    parser.add_argument(
        "--max-queued-rows",
        type=int,
        default=d.max_queued_rows,
        help="rows waiting for the model beyond which new requests get 503",
    )
    parser.add_argument(
        "--max-concurrent-requests",
        type=int,
        default=d.max_concurrent_requests,
        help="requests worked on at once (more wait for a slot)",
    )
    parser.add_argument(
        "--timeout", type=float, default=d.request_timeout_s, help="seconds per request (504)"
    )
    parser.add_argument(
        "--shutdown-grace",
        type=float,
        default=d.shutdown_grace_s,
        help="on SIGTERM/Ctrl-C, seconds queued and running requests may still finish before "
        "they are answered 503",
    )
    parser.add_argument(
        "--access-log", action="store_true", help="log every request (uvicorn's access log)"
    )


def _config(args: argparse.Namespace) -> Any:
    from llamo_plugin.serve.config import ServeConfig

    return ServeConfig(
        host=args.host,
        port=args.port,
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_rows=args.max_rows,
        max_smiles_chars=args.max_smiles_chars,
        max_atoms=args.max_atoms,
        max_new_tokens=args.max_new_tokens,
        batch_rows=args.batch_rows,
        batch_wait_ms=args.batch_wait_ms,
        max_queued_rows=args.max_queued_rows,
        max_concurrent_requests=args.max_concurrent_requests,
        request_timeout_s=args.timeout,
        shutdown_grace_s=args.shutdown_grace,
        reference_table=str(args.reference_table or ""),
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM / Ctrl-C; 0 after a graceful stop, 2 for unusable options."""
    import signal
    import threading

    from llamo_plugin.errors import BackendUnavailableError, CheckpointError, ConfigError
    from llamo_plugin.serve.auth import check_bind, load_token

    try:
        config = _config(args)
        token = load_token(args.token_file)
        check_bind(config.host, config.loopback, token)
        if config.reference_table and not Path(config.reference_table).is_file():
            raise ConfigError(f"--reference-table {config.reference_table}: no such file")
    except ConfigError as exc:
        logger.error("%s", exc)
        return 2
    try:
        from llamo_plugin.serve.app import create_app
        from llamo_plugin.serve.metrics import ServeMetrics
        from llamo_plugin.serve.server import bind_socket, make_batcher, make_server, socket_url
    except ImportError as exc:
        logger.error(
            "llamo serve needs the serve extra (pip install 'llamo-plugin[serve]'): %s", exc
        )
        return 2
    from llamo_plugin.cache import default_cache_path
    from llamo_plugin.runtime import load_pipeline
    from llamo_plugin.workers import WorkerError, set_process_threads

    try:
        sock = bind_socket(config.host, config.port)  # a taken port fails before the model loads
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", config.host, config.port, exc.strerror or exc)
        return 2
    threads = set_process_threads(args.threads)
    cache = None if args.no_cache else (args.cache or default_cache_path())
    metrics = ServeMetrics()
    batcher = make_batcher(
        lambda: load_pipeline(
            args.model,
            device=args.device,
            backend=args.backend,
            cache_path=cache,
            workers=args.workers,
            graph_threads=threads,
        ),
        config,
    )
    metrics.attach(batcher)
    try:
        pipe = batcher.start()
    except (
        CheckpointError,
        ConfigError,
        FileNotFoundError,
        WorkerError,
        BackendUnavailableError,
    ) as exc:
        sock.close()
        logger.error("%s", exc)
        return 2
    try:
        app = create_app(batcher, config, token=token, metrics=metrics, backend=args.backend)
        server = make_server(app, config, access_log=args.access_log)
        logger.info(
            "serving %s (sha256 %s) on %s; cache %s; %s",
            pipe.model.config.name,
            pipe.model_checksum,
            socket_url(sock),
            cache or "off",
            "bearer token required" if token else "no token (loopback only)",
        )
        # uvicorn re-raises the signal that stopped it once it is done; SIGTERM then lands
        # here instead of killing the process before the pipeline is closed.
        stopped_by: list[int] = []
        main = threading.current_thread() is threading.main_thread()
        previous = (
            signal.signal(signal.SIGTERM, lambda s, f: stopped_by.append(s)) if main else None
        )
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            pass  # Ctrl-C: uvicorn has shut down gracefully and re-raised it
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)
    finally:
        batcher.close()
        sock.close()
    logger.info("stopped")
    return 0
