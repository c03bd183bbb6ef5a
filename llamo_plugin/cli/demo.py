"""``llamo demo [TABLE]``: describe every molecule of a small CSV table, predict its HOMO,
LUMO and gap, and print the rows.

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
    parser.add_argument("--max-new-tokens", type=int, default=256, help="description length cap")
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows")


def run(args: argparse.Namespace) -> int:
    from llamo_plugin.config import DecodeConfig
    from llamo_plugin.errors import CheckpointError
    from llamo_plugin.pipeline import Pipeline
    from llamo_plugin.registry import load_model_or_default
    from llamo_plugin.tasks import PROPERTIES, parse_number

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
        model = load_model_or_default(args.model)
    except CheckpointError as exc:
        logger.error("%s", exc)
        return 2
    pipe = Pipeline(model)
    smiles = [r[args.smiles_column] for r in rows]
    # Descriptions with the model's own repetition control; numbers with plain greedy decoding.
    described = pipe.run(
        smiles,
        args.instruction,
        task="description",
        decode=model.config.decode.replace(max_new_tokens=args.max_new_tokens),
    )
    values: dict[str, list[float | None]] = {}
    for prop, spec in PROPERTIES.items():
        answers = pipe.run(
            smiles,
            spec.default_instruction,
            task="property",
            decode=DecodeConfig(
                max_new_tokens=spec.max_new_tokens, answer_format=spec.answer_format
            ),
        )
        values[prop.value] = [parse_number(a.text) if a.status == "ok" else None for a in answers]
    writer = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n")
    props = list(values)
    writer.writerow([*(rows[0].keys() if rows else []), "description", *props, "status"])
    for i, (row, answer) in enumerate(zip(rows, described, strict=True)):
        status = answer.status if answer.status != "ok" else answer.stop_reason
        numbers = ["" if values[p][i] is None else f"{values[p][i]:.4f}" for p in props]
        writer.writerow([*row.values(), " ".join((answer.text or "").split()), *numbers, status])
    n_bad = sum(a.status != "ok" for a in described)
    logger.info(
        "model %s (%s): %d rows, %d invalid; properties in Hartree",
        model.config.name,
        (model.checksum or "unsaved")[:12],
        len(rows),
        n_bad,
    )
    return 0
