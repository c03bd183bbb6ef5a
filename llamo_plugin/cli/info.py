"""``llamo info MODEL_DIR``: print a model directory's config, manifest checksum and sizes."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from llamo_plugin.checkpoint.format import CONFIG, read_manifest, verify_manifest
from llamo_plugin.errors import CheckpointError

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="model directory in our format")
    parser.add_argument("--verify", action="store_true", help="also verify every sha256")


def run(args: argparse.Namespace) -> int:
    try:
        manifest = verify_manifest(args.model) if args.verify else read_manifest(args.model)
        config = json.loads((args.model / CONFIG).read_text())
    except (CheckpointError, OSError, json.JSONDecodeError) as exc:
        logger.error("%s", exc)
        return 2
    info = {
        "model_sha256": manifest["model_sha256"],
        "verified": bool(args.verify),
        "bytes": sum(f["bytes"] for f in manifest["files"].values()),
        "config": config,
    }
    json.dump(info, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
