"""``llamo build-data``: build the instruction-tuning data (all tasks) into a folder."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from llamo_plugin.errors import LlamoError

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from llamo_plugin.train.build_all import TASKS

    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="the shared datasets folder (default: $LLAMO_SHARED/data or ../shared/data)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: <repo>/data/build)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of phrasings and sampling")
    parser.add_argument(
        "--split-seed", type=int, default=0, help="seed of the val slices (test splits are fixed)"
    )
    parser.add_argument(
        "--tasks", nargs="+", choices=TASKS, default=list(TASKS), help="builders to run"
    )
    parser.add_argument(
        "--max-molecules",
        type=int,
        default=None,
        help="at most this many training molecules per pool (default: all)",
    )
    parser.add_argument(
        "--match",
        choices=("inchikey", "skeleton"),
        default="inchikey",
        help="exclude by full InChIKey, or by its first block (also stereoisomers, "
        "protonation states)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache of IUPAC names and evaluation keys (default: ~/.cache/llamo-plugin/build)",
    )
    parser.add_argument(
        "--write-splits",
        action="store_true",
        help="(re)write the committed test splits under llamo_plugin/resources/splits",
    )


def run(args: argparse.Namespace) -> int:
    from llamo_plugin.train.build_all import build_all

    if args.max_molecules is not None and args.max_molecules < 1:
        logger.error("--max-molecules must be >= 1")
        return 2
    try:
        manifest = build_all(
            args.data_dir,
            args.out,
            seed=args.seed,
            split_seed=args.split_seed,
            match=args.match,
            tasks=args.tasks,
            max_molecules=args.max_molecules,
            cache_dir=args.cache_dir,
            write_splits=args.write_splits,
        )
    except (LlamoError, OSError, ValueError) as exc:
        logger.error("%s", exc)
        return 2
    summary = {
        name: entry.get("splits", entry["bytes"]) for name, entry in manifest["files"].items()
    }
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
