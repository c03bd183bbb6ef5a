"""``llamo annotate INPUT -o OUTPUT --tasks description,property,iupac,qa``.

Streams INPUT (CSV, TSV, Parquet, SDF, SMILES) in batches through the same
:class:`~llamo_plugin.annotate.Annotator` the KNIME nodes use and writes OUTPUT (CSV, TSV or
Parquet, from the extension) with the input columns kept and the task columns appended. Bad
rows are data (a missing value and an ``llamo_error``); the exit status is non-zero only for
unusable input or options. A summary (rows, errors by kind, cache hits, time) ends the run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from pathlib import Path

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
        "--tasks", default="description", help="comma-separated: description,property,iupac,qa"
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
    parser.add_argument("--model", type=Path, default=None, help="default: the embedded model")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--backend", choices=["hf", "vllm"], default="hf")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="answer cache (default ~/.cache/llamo-plugin/answers.sqlite)",
    )
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--batch-rows", type=int, default=1000)
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


def run(args: argparse.Namespace) -> int:
    from llamo_plugin.annotate import AnnotateOptions, Annotator, RowError, output_columns
    from llamo_plugin.cache import default_cache_path
    from llamo_plugin.errors import CheckpointError, ConfigError
    from llamo_plugin.pipeline import load_pipeline
    from llamo_plugin.tables import (
        WRITE_FORMATS,
        TableError,
        TableWriter,
        estimate_rows,
        find_smiles_column,
        read_batches,
        table_format,
    )
    from llamo_plugin.workers import WorkerError

    try:
        options = AnnotateOptions(
            tasks=tuple(t.strip() for t in args.tasks.split(",") if t.strip()),
            properties=tuple(p.strip() for p in args.properties.split(",") if p.strip()),
            add_ev=args.ev,
            iupac_fallback=not args.no_iupac_fallback,
            question=args.question,
            question_column=args.question_column,
            nearest_neighbour=args.nearest_neighbour,
            fail_on_error=args.fail_on_error,
        )
        if args.batch_rows < 1:
            raise ConfigError("--batch-rows must be >= 1")
        batches = read_batches(args.input, args.batch_rows)
        first = next(batches)
        smiles_col = find_smiles_column(list(first.columns), args.smiles_column)
        if options.question_column and options.question_column not in first.columns:
            raise TableError(f"question column {options.question_column!r} not found")
        table_format(args.output, WRITE_FORMATS)  # an unusable output fails before the work
    except (ConfigError, TableError) as exc:
        logger.error("%s", exc)
        return 2
    except StopIteration:
        logger.error("%s: empty table", args.input)
        return 2
    try:
        cache = None if args.no_cache else (args.cache or default_cache_path())
        workers = args.workers
        if workers == "auto" and estimate_rows(args.input) < AUTO_MIN_ROWS:
            workers = 1  # a small table: starting processes costs more than they save
        pipe = load_pipeline(
            args.model,
            device=args.device,
            backend=args.backend,
            cache_path=cache,
            workers=workers,
        )
    except (CheckpointError, FileNotFoundError, WorkerError) as exc:
        logger.error("%s", exc)
        return 2

    annotator = Annotator(pipe, options)
    columns = output_columns(options)
    floats = {name for name, kind in columns if kind == "float"}
    writer = TableWriter(args.output, floats)
    t0 = time.perf_counter()
    done = 0
    try:
        for frame in itertools.chain([first], batches):
            questions = list(frame[options.question_column]) if options.question_column else None
            out = annotator.annotate(list(frame[smiles_col]), questions)
            frame = frame.copy()
            for name, _kind in columns:
                target = name if name not in frame.columns else f"{name}_llamo"
                frame[target] = out[name]
            writer.write(frame)
            done += len(frame)
            rate = done / max(time.perf_counter() - t0, 1e-9)
            logger.info("annotated %d rows (%.1f rows/s)", done, rate)
    except RowError as exc:
        logger.error("%s", exc)
        return 1
    except TableError as exc:
        logger.error("%s", exc)
        return 2
    finally:
        writer.close()
        pipe.close()
    summary = {
        "input": str(args.input),
        "output": str(args.output),
        "model": pipe.model.config.name,
        "model_sha256": pipe.model.checksum,
        **annotator.stats.as_dict(),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    sys.stderr.write(json.dumps(summary) + "\n")
    return 0
