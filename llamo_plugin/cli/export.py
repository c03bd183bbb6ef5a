"""``llamo export-onnx MODEL_DIR [--verify]``: add ``graph.onnx`` to a model directory."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", type=Path, help="a model directory in our format")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="compare onnxruntime with PyTorch on varied batches (1 to 256 molecules, "
        "single atoms, salts, no motifs, 100+ atoms); refuse the file above 1e-4",
    )


def run(args: argparse.Namespace) -> int:
    from llamo_plugin.errors import CheckpointError
    from llamo_plugin.export.onnx_graph import export_model_dir

    try:
        path, report = export_model_dir(args.model_dir, verify=args.verify)
    except CheckpointError as exc:
        logger.error("%s", exc)
        return 1
    result = {"onnx": str(path), "bytes": path.stat().st_size}
    if report is not None:
        result.update(
            max_abs_diff=report.max_abs_diff,
            tolerance=report.tolerance,
            batch_sizes=list(report.batch_sizes),
            molecules=report.molecules,
            ok=report.ok,
        )
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0
