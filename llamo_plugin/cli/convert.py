"""``llamo convert-checkpoint CKPT OUT_DIR``: the official LLaMo ``.ckpt`` -> our model format.

The tokenizer comes from the base model (Llama-2-7b-chat-hf): a Hugging Face tokenizer
directory (``--tokenizer``) or a ``.gguf`` file carrying the vocabulary (``--tokenizer-gguf``).
Heavy imports (torch, transformers) happen inside :func:`run`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

_DTYPES = ("bfloat16", "float16", "float32")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``convert-checkpoint`` options on ``parser``."""
    parser.add_argument("ckpt", type=Path, help="the official LLaMo Lightning .ckpt")
    parser.add_argument("out_dir", type=Path, help="model directory to write (our format)")
    tok = parser.add_mutually_exclusive_group(required=True)
    tok.add_argument(
        "--tokenizer",
        type=Path,
        metavar="DIR",
        help="Hugging Face tokenizer directory of Llama-2-7b-chat-hf",
    )
    tok.add_argument(
        "--tokenizer-gguf",
        type=Path,
        metavar="FILE",
        help="a .gguf file with the Llama-2 vocabulary",
    )
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow arbitrary unpickling (Lightning hyper_parameters); only for "
        "files from a source you trust",
    )
    parser.add_argument(
        "--lora-alpha",
        type=float,
        default=32.0,
        help="LoRA alpha; scaling = alpha / r (default 32, LLaMo's)",
    )
    parser.add_argument(
        "--base-config",
        type=Path,
        metavar="CONFIG_JSON",
        help="the base LM's config.json (default: inferred from tensor shapes)",
    )
    parser.add_argument(
        "--token-order",
        choices=("motif_first", "motif_last"),
        default="motif_first",
        help="graph-token order (default motif_first, the released code's)",
    )
    parser.add_argument(
        "--per-level-attention",
        action="store_true",
        help="write one level cross-attention module per level instead of the "
        "released code's single shared module",
    )
    parser.add_argument(
        "--dtype",
        choices=_DTYPES,
        default=None,
        help="LM dtype to write (default: as stored, bfloat16)",
    )
    parser.add_argument(
        "--num-attention-heads",
        type=int,
        default=None,
        help="LM heads when no --base-config is given (default hidden // 128)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists")


def _load_tokenizer(args: argparse.Namespace) -> object:
    from transformers import AutoTokenizer

    if args.tokenizer is not None:
        return AutoTokenizer.from_pretrained(args.tokenizer, local_files_only=True)
    gguf: Path = args.tokenizer_gguf
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)


def run(args: argparse.Namespace) -> int:
    """Convert; returns 0 on success, 2 on a checkpoint, tokenizer or input error."""
    import torch

    from llamo_plugin.checkpoint.convert_llamo import convert_official_checkpoint
    from llamo_plugin.errors import LlamoError

    try:
        tokenizer = _load_tokenizer(args)
    except (OSError, ValueError) as exc:
        logger.error("cannot load the tokenizer: %s", exc)
        return 2
    try:
        report = convert_official_checkpoint(
            args.ckpt,
            args.out_dir,
            tokenizer,
            trust_pickle=args.trust_pickle,
            lora_alpha=args.lora_alpha,
            base_config=args.base_config,
            token_order=args.token_order,
            dtype=getattr(torch, args.dtype) if args.dtype else None,
            overwrite=args.overwrite,
            shared_level_attention=not args.per_level_attention,
            num_attention_heads=args.num_attention_heads,
        )
    except LlamoError as exc:
        logger.error("%s", exc)
        return 2
    logger.info("wrote %s (model sha256 %s)", args.out_dir, report.model_sha256)
    return 0
