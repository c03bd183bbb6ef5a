"""``llamo annotate INPUT -o OUTPUT --tasks description,property,iupac,qa``.

Streams INPUT (CSV, TSV, Parquet, SDF, SMILES) in batches through the same
:class:`~llamo_plugin.annotate.Annotator` the KNIME nodes use and writes OUTPUT (CSV, TSV or
Parquet, from the extension) with the input columns kept and the task columns appended. Bad
rows are data (a missing value and an ``llamo_error``); the exit status is non-zero only for
unusable input or options. A JSON summary (rows, errors by kind, cache hits, time) goes to
stdout; logs and progress go to stderr.

Nothing is lost: the output is written beside the target under a temporary name and renamed
into place only when complete, an output that is the input is refused before anything is
read, and Ctrl-C / SIGTERM end with a one-line message (exit 130 / 143), no output file, and
every finished answer kept in the cache for the rerun.

``--engine ray`` runs the same annotations on Ray Data (:mod:`llamo_plugin.scale`): INPUT may
be a folder of tables, OUTPUT is a folder of Parquet shards, and a rerun resumes.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llamo_plugin.cli.model_options import add_model_arguments

logger = logging.getLogger(__name__)

#: ``--workers auto`` starts worker processes only for tables of at least this many rows. On
#: 2 cores (description task, distinct molecules, no cache; docs/serving.md) 1,000 rows took
#: 49-51 s end to end with 2 workers vs 57-59 s without, 300 rows 31-32 s vs 25-26 s: start-up
#: costs ~11 s net and each distinct molecule saves ~20 ms, so they pay off from ~600 distinct
#: molecules. 2,000 leaves room for repeated and cached rows, which the workers do not speed up.
#: With the decode kernel also in the single 2-thread process, 1,000 rows now take about as long
#: either way (50-58 s vs 54-58 s) and 2,000 rows 82 s vs 93 s: the threshold still holds.
AUTO_MIN_ROWS = 2_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from llamo_plugin.workers import workers_arg

    parser.add_argument("input", type=Path, help="CSV, TSV, Parquet, SDF or SMILES file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="CSV, TSV or Parquet")
    parser.add_argument(
        "--tasks",
        default="description",
        help="comma-separated: description,property,iupac,qa, and forward,retro (reactions: "
        "the SMILES column holds the reaction side; models trained for them only)",
    )
    parser.add_argument("--smiles-column", default=None, help="default: detected by name")
    parser.add_argument("--question", default="", help="qa: one question for every row")
    parser.add_argument("--question-column", default="", help="qa: a column of questions")
    parser.add_argument("--properties", default="homo,lumo,gap")
    parser.add_argument("--ev", action="store_true", help="also write properties in eV")
    parser.add_argument(
        "--no-iupac-fallback",
        action="store_true",
        help="keep the model's name even when it does not round-trip",
    )
    parser.add_argument(
        "--nearest-neighbour",
        action="store_true",
        help="description: add the most similar reference molecule",
    )
    parser.add_argument(
        "--retrieval",
        choices=["auto", "on", "off"],
        default="auto",
        help="description: put the most similar annotated molecules in the prompt (auto: on "
        "for models trained with them, e.g. the embedded model; off for the official one)",
    )
    parser.add_argument(
        "--neighbours",
        type=int,
        default=0,
        help="description: neighbours per prompt (default: the model's setting)",
    )
    parser.add_argument(
        "--reference-table",
        type=Path,
        default=None,
        help="annotated table to retrieve from (TSV/CSV: smiles, caption or description "
        "[, cid or id]; default: the bundled ChEBI-20 validation set)",
    )
    add_model_arguments(parser)
    parser.add_argument("--batch-rows", type=int, default=1000)
    engine = parser.add_argument_group(
        "Ray engine", "--engine ray: INPUT may be a folder of tables, OUTPUT is a folder"
    )
    engine.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: this process (and --workers); ray: Ray Data, one model replica per "
        "actor, one Parquet file per shard in the OUTPUT folder, a rerun resumes",
    )
    engine.add_argument(
        "--ray-address",
        default="",
        help="Ray cluster to join (auto: the one this machine belongs to; default: "
        "$RAY_ADDRESS, else a local Ray)",
    )
    engine.add_argument("--actors", type=int, default=0, help="model replicas (0: automatic)")
    engine.add_argument("--cpus-per-actor", type=int, default=1, help="CPUs (threads) each")
    engine.add_argument(
        "--gpus-per-actor", type=float, default=None, help="default: 1 when the cluster has GPUs"
    )
    engine.add_argument(
        "--shard-rows", type=int, default=100_000, help="rows per output shard (unit of restart)"
    )
    parser.add_argument(
        "--workers",
        type=workers_arg,
        default="auto",
        help="worker processes for the model (a number, or auto: one per core for a small "
        f"model on CPU for tables of at least {AUTO_MIN_ROWS:,} rows, since starting them "
        "takes seconds; 1: none)",
    )
    parser.add_argument(
        "--fail-on-error",
        action="store_true",
        help="stop at the first bad row instead of writing a missing value",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads of this run (default: the cores this process may use, by its CPU "
        "affinity; worker processes share them)",
    )
    parser.add_argument(
        "--max-smiles-chars",
        type=int,
        default=5_000,
        help="longer SMILES get the row status too_large instead of being parsed",
    )
    parser.add_argument(
        "--max-atoms",
        type=int,
        default=1_000,
        help="SMILES with more atoms get the row status too_large",
    )


class Terminated(BaseException):
    """SIGTERM arrived (raised in the main thread by the handler :func:`run` installs)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated


def run(args: argparse.Namespace) -> int:
    """Annotate; exit 0 (done), 1 (a bad row with ``--fail-on-error``), 2 (unusable input,
    output, model or options), 130 (Ctrl-C) or 143 (SIGTERM). Nothing is written to the
    output unless the run completes; answers finished before an interruption stay cached."""
    import signal
    import threading

    handler_set = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if handler_set else None
    state = _RunState()
    try:
        return _run(args, state)
    except (KeyboardInterrupt, Terminated) as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        state.cleanup()  # before the message, so that it is the run's last line
        logger.error("%s", state.interrupted_message(args, "interrupted" if interrupted else
                                                     "terminated"))  # fmt: skip
        return 130 if interrupted else 143
    finally:
        state.cleanup()
        if handler_set:
            signal.signal(signal.SIGTERM, previous)


class _RunState:
    """What an interruption must clean up, and what it reports."""

    def __init__(self) -> None:
        self.writer: Any = None
        self.pipe: Any = None
        self.rows_done = 0
        self.cache_path: Path | None = None
        self.ray_output: Path | None = None

    def cleanup(self) -> None:
        if self.writer is not None:
            self.writer.discard()
        if self.pipe is not None:
            pipe, self.pipe = self.pipe, None
            pipe.close()

    def interrupted_message(self, args: argparse.Namespace, what: str) -> str:
        if self.ray_output is not None:
            return (
                f"{what}; the finished shards are kept in {self.ray_output}: rerun the same "
                "command to resume"
            )
        resume = (
            f"answers computed so far are cached in {self.cache_path}: rerun the same "
            "command to resume"
            if self.cache_path is not None
            else "rerun the same command to start again (--no-cache: nothing was kept)"
        )
        return f"{what} after {self.rows_done:,} rows; {args.output} not written; {resume}"


def _options(args: argparse.Namespace) -> Any:
    """The :class:`~llamo_plugin.annotate.AnnotateOptions` of the command line (``ConfigError``
    when they do not go together)."""
    from llamo_plugin.annotate import AnnotateOptions
    from llamo_plugin.chem.smiles import SmilesLimits

    return AnnotateOptions(
        tasks=tuple(t.strip() for t in args.tasks.split(",") if t.strip()),
        properties=tuple(p.strip() for p in args.properties.split(",") if p.strip()),
        add_ev=args.ev,
        iupac_fallback=not args.no_iupac_fallback,
        question=args.question,
        question_column=args.question_column,
        nearest_neighbour=args.nearest_neighbour,
        retrieval=args.retrieval,
        neighbours=args.neighbours,
        reference_table=str(args.reference_table or ""),
        fail_on_error=args.fail_on_error,
        limits=SmilesLimits(max_chars=args.max_smiles_chars, max_atoms=args.max_atoms),
    )


def _run(args: argparse.Namespace, state: _RunState) -> int:
    if args.engine == "ray":
        return _run_ray(args, state)
    from llamo_plugin.annotate import Annotator, RowError, append_columns, output_columns
    from llamo_plugin.cache import default_cache_path
    from llamo_plugin.errors import CheckpointError, ConfigError
    from llamo_plugin.runtime import load_pipeline
    from llamo_plugin.tables import (
        TableError,
        TableWriter,
        check_distinct_files,
        estimate_rows,
        find_smiles_column,
        read_batches,
    )
    from llamo_plugin.workers import WorkerError, set_process_threads

    try:
        options = _options(args)
        if args.batch_rows < 1:
            raise ConfigError("--batch-rows must be >= 1")
        if args.threads is not None and args.threads < 1:
            raise ConfigError("--threads must be >= 1")
        check_distinct_files(args.input, args.output)  # before a single byte is read
        columns = output_columns(options)
        floats = {c.key for c in columns if c.kind == "float"}
        state.writer = TableWriter(args.output, floats)  # an unwritable output fails now
        batches = read_batches(args.input, args.batch_rows)
        first = next(batches)
        smiles_col = find_smiles_column(list(first.frame.columns), args.smiles_column)
        if options.question_column and options.question_column not in first.frame.columns:
            raise TableError(f"question column {options.question_column!r} not found")
    except (ConfigError, TableError) as exc:
        logger.error("%s", exc)
        return 2
    except StopIteration:
        logger.error("%s: empty table (no rows)", args.input)
        return 2
    total = estimate_rows(args.input)
    threads = set_process_threads(args.threads)
    try:
        cache = None if args.no_cache else (args.cache or default_cache_path())
        workers = args.workers
        if workers == "auto" and total < AUTO_MIN_ROWS:
            workers = 1  # a small table: starting processes costs more than they save
        state.pipe = pipe = load_pipeline(
            args.model,
            device=args.device,
            backend=args.backend,
            cache_path=cache,
            workers=workers,
            graph_threads=threads,
        )
        state.cache_path = cache
        annotator = Annotator(pipe, options)  # refuses tasks the model was not trained for
        columns = annotator.columns()  # the neighbours column depends on the model
    except (CheckpointError, ConfigError, FileNotFoundError, WorkerError) as exc:
        logger.error("%s", exc)
        return 2

    t0 = time.perf_counter()
    with _progress(total, quiet=args.quiet) as bar:
        try:
            for batch in itertools.chain([first], batches):
                frame = batch.frame
                questions = (
                    list(frame[options.question_column]) if options.question_column else None
                )
                out = annotator.annotate(
                    list(frame[smiles_col]), questions, read_errors=batch.read_errors
                )
                frame = append_columns(frame, out, columns)
                state.writer.write(frame)
                state.rows_done += len(frame)
                bar.update(len(frame))
            state.writer.commit()
        except RowError as exc:
            logger.error("%s", exc)
            return 1
        except TableError as exc:
            logger.error("%s", exc)
            return 2
    summary = {
        "input": str(args.input),
        "output": str(args.output),
        "model": pipe.model.config.name,
        "model_sha256": pipe.model.checksum,
        **annotator.stats.as_dict(),
        "threads": threads,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


def _run_ray(args: argparse.Namespace, state: _RunState) -> int:
    """``--engine ray``: the same annotations, one Parquet file per shard in the output
    folder (:mod:`llamo_plugin.scale`); a rerun resumes."""
    from llamo_plugin.annotate import RowError
    from llamo_plugin.cache import default_cache_path
    from llamo_plugin.errors import CheckpointError, ConfigError
    from llamo_plugin.scale import RayOptions, annotate_with_ray
    from llamo_plugin.scale.shards import list_inputs
    from llamo_plugin.tables import TableError, estimate_rows

    try:
        import ray  # noqa: F401
    except ImportError:
        logger.error("--engine ray needs Ray: pip install 'llamo-plugin[ray]'")
        return 2
    state.ray_output = args.output
    try:
        options = _options(args)
        ray_options = RayOptions(
            address=args.ray_address,
            actors=args.actors,
            cpus_per_actor=args.cpus_per_actor,
            gpus_per_actor=-1.0 if args.gpus_per_actor is None else args.gpus_per_actor,
            batch_rows=args.batch_rows,
            shard_rows=args.shard_rows,
        )
        total = sum(estimate_rows(Path(f.path)) for f in list_inputs(args.input))
    except (ConfigError, TableError) as exc:
        logger.error("%s", exc)
        return 2
    cache = None if args.no_cache else (args.cache or default_cache_path())
    with _progress(total, quiet=args.quiet) as bar:
        try:
            summary = annotate_with_ray(
                args.input,
                args.output,
                options,
                model=args.model,
                device=args.device,
                backend=args.backend,
                cache_path=cache,
                smiles_column=args.smiles_column,
                ray_options=ray_options,
                progress=bar.update,
            )
        except (CheckpointError, ConfigError, TableError, FileNotFoundError) as exc:
            logger.error("%s", exc)
            return 2
        except RowError as exc:
            logger.error("%s", exc)
            return 1
    sys.stdout.write(json.dumps({"input": str(args.input), **summary.as_dict()}) + "\n")
    return 0


class _LogProgress:
    """Progress as a log line per batch (not a terminal, e.g. a pipeline's log file)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.t0 = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        rate = self.done / elapsed
        if self.total > self.done:
            eta = (self.total - self.done) / max(rate, 1e-9)
            logger.info(
                "annotated %s of ~%s rows (%.1f rows/s, ~%.0f s left)",
                f"{self.done:,}", f"{self.total:,}", rate, eta,
            )  # fmt: skip
        else:
            logger.info("annotated %s rows (%.1f rows/s)", f"{self.done:,}", rate)


@contextlib.contextmanager
def _progress(total: int, *, quiet: bool) -> Iterator[Any]:
    """A tqdm bar with total and ETA on a terminal; log lines otherwise; nothing if quiet."""
    if quiet:
        yield _NoProgress()
    elif sys.stderr.isatty():
        from tqdm import tqdm

        with tqdm(total=total or None, unit="rows", dynamic_ncols=True) as bar:
            yield bar
    else:
        yield _LogProgress(total)


class _NoProgress:
    def update(self, n: int) -> None:
        pass
