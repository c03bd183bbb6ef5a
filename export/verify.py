"""``python -m export.verify MODEL_DIR``: onnxruntime vs PyTorch parity of a model
directory's ``graph.onnx`` (see export/README.md)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.verify", description=__doc__)
    parser.add_argument("model_dir", type=Path, help="a model directory with graph.onnx")
    parser.add_argument("--molecules", type=int, default=256, help="reference molecules")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    from llamo_plugin.checkpoint.format import ONNX_GRAPH, load_model
    from llamo_plugin.export.onnx_graph import check_parity, reference_smiles

    onnx_file = args.model_dir / ONNX_GRAPH
    if not onnx_file.is_file():
        logging.error("no %s in %s; run `llamo export-onnx %s`", ONNX_GRAPH, args.model_dir,
                      args.model_dir)  # fmt: skip
        return 2
    model = load_model(args.model_dir)
    report = check_parity(
        model.graph, onnx_file, reference_smiles(args.molecules), tolerance=args.tolerance
    )
    sys.stdout.write(
        json.dumps(
            {
                "onnx": str(onnx_file),
                "max_abs_diff": report.max_abs_diff,
                "tolerance": report.tolerance,
                "batch_sizes": list(report.batch_sizes),
                "molecules": report.molecules,
                "ok": report.ok,
            }
        )
        + "\n"
    )
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
