"""``llamo demo [TABLE]``: describe every molecule of a small CSV table and print the rows.

This is the project's main job in miniature: a SMILES column in, an answer column and a
per-row status out (bad rows get a status and an empty answer, never a crash).
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "examples" / "molecules.csv"
DEFAULT_INSTRUCTION = "Could you give me a brief overview of this molecule?"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "table",
        nargs="?",
        type=Path,
        default=DEFAULT_TABLE,
        help="CSV file with a SMILES column (default: the example table)",
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="model directory (default: the embedded model)"
    )
    parser.add_argument("--smiles-column", default="smiles")
    parser.add_argument("--instruction", default=DEFAULT_INSTRUCTION)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows")


def run(args: argparse.Namespace) -> int:
    from llamo_plugin.config import DecodeConfig
    from llamo_plugin.errors import CheckpointError
    from llamo_plugin.registry import load_model_or_tiny

    if not args.table.is_file():
        logger.error("no such table: %s", args.table)
        return 2
    with open(args.table, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and args.smiles_column not in rows[0]:
        logger.error(
            "column %r not in %s (columns: %s)", args.smiles_column, args.table, list(rows[0])
        )
        return 2
    rows = rows[: args.limit] if args.limit else rows
    try:
        model = load_model_or_tiny(args.model)
    except CheckpointError as exc:
        logger.error("%s", exc)
        return 2
    answers = model.answer(
        [r[args.smiles_column] for r in rows],
        args.instruction,
        decode=DecodeConfig(max_new_tokens=args.max_new_tokens),
    )
    writer = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n")
    columns = [*(rows[0].keys() if rows else []), "description", "status"]
    writer.writerow(columns)
    for row, answer in zip(rows, answers, strict=True):
        status = answer.status if answer.status != "ok" else answer.generation.stop_reason
        writer.writerow([*row.values(), " ".join((answer.text or "").split()), status])
    n_bad = sum(a.status != "ok" for a in answers)
    logger.info(
        "model %s (%s): %d rows, %d invalid",
        model.config.name,
        (model.checksum or "unsaved")[:12],
        len(rows),
        n_bad,
    )
    return 0
