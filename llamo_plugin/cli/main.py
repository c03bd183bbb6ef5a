"""Entry point of the ``llamo`` command.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; this module only registers them and sets up logging once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "annotate": (
        "llamo_plugin.cli.annotate",
        "append descriptions, properties, IUPAC names or answers to a molecule table",
    ),
    "info": ("llamo_plugin.cli.info", "show a model directory's config and checksum"),
    "train": ("llamo_plugin.cli.train", "train (or resume) a small LLaMo from a config"),
    "convert-checkpoint": (
        "llamo_plugin.cli.convert",
        "convert the official LLaMo Lightning .ckpt to our model format",
    ),
    "evaluate": ("llamo_plugin.cli.evaluate", "benchmark a model on a task's test sets"),
    "build-data": ("llamo_plugin.cli.build_data", "build the instruction-tuning data files"),
    "export-onnx": (
        "llamo_plugin.cli.export",
        "export a model's graph encoder + projector to ONNX (graph.onnx in the model directory)",
    ),
    "bench": ("llamo_plugin.cli.bench", "measure inference throughput against the reference path"),
    "serve": (
        "llamo_plugin.cli.serve",
        "serve one model over HTTP: batch annotation and an OpenAI-compatible chat API",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llamo",
        description="LLaMo molecular graph assistant: describe molecules, predict properties, "
        "name them and answer questions about them.",
    )
    _add_verbosity(parser, None)
    # The same options after the subcommand (``llamo annotate ... -v``); SUPPRESS keeps a
    # subcommand's absent option from overwriting the one given before it.
    common = argparse.ArgumentParser(add_help=False)
    _add_verbosity(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        module = importlib.import_module(module_name)
        module.add_arguments(sp)
        sp.set_defaults(_module=module_name)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if default is None else default,
        help="more logging (-v: debug messages of llamo; -vv: of every library)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=False if default is None else default,
        help="only warnings and errors; no progress",
    )


def log_level(verbose: int, quiet: bool) -> tuple[int, int]:
    """(level of llamo's loggers, level of every other library's) for ``-v``/``-q``."""
    if quiet:
        return logging.WARNING, logging.WARNING
    if verbose >= 2:
        return logging.DEBUG, logging.DEBUG
    if verbose == 1:
        return logging.DEBUG, logging.INFO
    return logging.INFO, logging.WARNING


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ours, others = log_level(args.verbose, args.quiet)
    logging.basicConfig(
        level=others,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("llamo_plugin").setLevel(ours)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(args._module)
    return int(module.run(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
