"""``llamo train --config configs/embedded.json --out runs/embedded``: train or resume."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="training config (JSON)")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="run directory (checkpoints, tokenizer, final model); resumes",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=REPO / "data" / "build",
        help="where the config's relative data paths live (llamo build-data)",
    )


def run(args: argparse.Namespace) -> int:
    from llamo_plugin.errors import ConfigError
    from llamo_plugin.train.config import TrainConfig
    from llamo_plugin.train.loop import train

    try:
        config = TrainConfig.from_dict(json.loads(args.config.read_text()))
    except (OSError, json.JSONDecodeError, ConfigError) as exc:
        logger.error("bad training config %s: %s", args.config, exc)
        return 2
    missing = [
        s.path
        for st in config.stages
        for s in st.data
        if not (args.data_root / s.path).is_file() and not Path(s.path).is_absolute()
    ]
    if missing:
        logger.error(
            "missing training data under %s: %s (run `llamo build-data` first)",
            args.data_root,
            missing,
        )
        return 2
    path = train(config, args.out, args.data_root)
    logger.info("model written to %s", path)
    return 0
