"""The Llama-2 SentencePiece vocabulary for prompt tests, fetched from PyPI into a cache.

The ``llama-cpp-python==0.3.36`` source distribution carries
``vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf`` (the Llama-2 vocabulary, no weights),
which transformers loads with ``AutoTokenizer.from_pretrained(folder, gguf_file=...)``.
It is downloaded once (about 76 MB), the vocabulary file extracted, and the sdist deleted.
Nothing of it is committed to the repository.

From it, :func:`write_llama2_chat_tokenizer_dir` rebuilds the tokenizer files that
meta-llama/Llama-2-7b-chat-hf ships for its slow SentencePiece tokenizer (``tokenizer.model``,
cached next to the GGUF, plus the two JSON files), and :func:`slow_llama_tokenizer_class`
gives transformers 4.44.2's slow ``LlamaTokenizer`` (LLaMo's), which transformers 5.x lacks.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any, ClassVar

logger = logging.getLogger(__name__)

SDIST = "llama-cpp-python==0.3.36"
MEMBER = "vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf"
GGUF_NAME = "ggml-vocab-llama-spm.gguf"
#: Bump when :func:`build_sentencepiece_model` changes, so cached copies are rebuilt.
SPM_BUILD_VERSION = 1


def cache_dir() -> Path:
    root = os.environ.get("LLAMO_TEST_CACHE") or Path.home() / ".cache" / "llamo-plugin"
    return Path(root) / "llama2-vocab"


def fetch_gguf() -> Path:
    """Path of the cached vocabulary ``.gguf``; downloads it on first use.

    Raises:
        RuntimeError: when PyPI cannot be reached or the file is not in the sdist.
    """
    target = cache_dir() / GGUF_NAME
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-q",
            "-d",
            tmp,
            SDIST,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
        archives = list(Path(tmp).glob("*.tar.gz"))
        if done.returncode != 0 or not archives:
            raise RuntimeError(f"could not download {SDIST}: {done.stderr[-500:]}")
        with tarfile.open(archives[0]) as tar:
            member = next((m for m in tar.getmembers() if m.name.endswith(MEMBER)), None)
            if member is None:
                raise RuntimeError(f"{MEMBER} not found in {archives[0].name}")
            data = tar.extractfile(member)
            assert data is not None
            partial = target.with_suffix(".partial")
            partial.write_bytes(data.read())
            partial.replace(target)
    return target


# --- A SentencePiece ``tokenizer.model`` and HF tokenizer folder rebuilt from the GGUF ---------


def _added_token(content: str, typed: bool) -> dict[str, Any]:
    token: dict[str, Any] = {"__type": "AddedToken"} if typed else {}
    token.update(content=content, lstrip=False, normalized=False, rstrip=False, single_word=False)
    return token


#: ``tokenizer_config.json`` of meta-llama/Llama-2-7b-chat-hf (tokenizer part, as shipped).
LLAMA2_CHAT_TOKENIZER_CONFIG: dict[str, Any] = {
    "add_bos_token": True,
    "add_eos_token": False,
    "bos_token": _added_token("<s>", typed=True),
    "clean_up_tokenization_spaces": False,
    "eos_token": _added_token("</s>", typed=True),
    "legacy": False,
    "model_max_length": 1000000000000000019884624838656,
    "pad_token": None,
    "padding_side": "right",
    "sp_model_kwargs": {},
    "tokenizer_class": "LlamaTokenizer",
    "unk_token": _added_token("<unk>", typed=True),
}

#: ``special_tokens_map.json`` of meta-llama/Llama-2-7b-chat-hf.
LLAMA2_CHAT_SPECIAL_TOKENS_MAP: dict[str, Any] = {
    "bos_token": _added_token("<s>", typed=False),
    "eos_token": _added_token("</s>", typed=False),
    "unk_token": _added_token("<unk>", typed=False),
}


def _gguf_scalar(reader: Any, key: str, default: Any) -> Any:
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def build_sentencepiece_model(gguf_path: str | Path, out_path: str | Path) -> Path:
    """Write Llama-2's SentencePiece ``tokenizer.model`` rebuilt from a llama.cpp vocab GGUF.

    The GGUF holds the pieces, their scores and their types (llama.cpp numbers the types as
    SentencePiece does: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte); the
    model and normaliser settings are Llama-2's: BPE with byte fallback, identity normaliser
    with a dummy prefix, whitespace escaped but not collapsed; unk 0, bos 1, eos 2, no pad.
    """
    from gguf import GGUFReader
    from sentencepiece import sentencepiece_model_pb2 as pb

    reader = GGUFReader(str(gguf_path))
    if _gguf_scalar(reader, "tokenizer.ggml.model", "llama") != "llama":
        raise ValueError(f"{gguf_path} does not hold a SentencePiece (llama) vocabulary")
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    scores = reader.fields["tokenizer.ggml.scores"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    if not len(tokens) == len(scores) == len(types):
        raise ValueError("tokens, scores and token types differ in length")

    model = pb.ModelProto()
    for piece, score, kind in zip(tokens, scores, types, strict=True):
        entry = model.pieces.add()
        entry.piece = piece
        entry.score = float(score)
        entry.type = int(kind)

    unk = int(_gguf_scalar(reader, "tokenizer.ggml.unknown_token_id", 0))
    bos = int(_gguf_scalar(reader, "tokenizer.ggml.bos_token_id", 1))
    eos = int(_gguf_scalar(reader, "tokenizer.ggml.eos_token_id", 2))
    trainer = model.trainer_spec
    trainer.model_type = pb.TrainerSpec.BPE
    trainer.vocab_size = len(tokens)
    trainer.byte_fallback = True
    trainer.split_digits = True
    trainer.allow_whitespace_only_pieces = True
    trainer.max_sentencepiece_length = 16
    trainer.character_coverage = 0.99995
    trainer.unk_id, trainer.bos_id, trainer.eos_id, trainer.pad_id = unk, bos, eos, -1
    trainer.unk_piece, trainer.bos_piece, trainer.eos_piece = tokens[unk], tokens[bos], tokens[eos]
    trainer.pad_piece = "<pad>"
    trainer.unk_surface = " \u2047 "

    norm = model.normalizer_spec
    norm.name = "identity"
    norm.precompiled_charsmap = b""
    norm.add_dummy_prefix = True
    norm.remove_extra_whitespaces = False
    norm.escape_whitespaces = True

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(model.SerializeToString())
    return out


def cached_sentencepiece_model(gguf_path: str | Path | None = None) -> Path:
    """:func:`build_sentencepiece_model` of ``gguf_path`` (default :func:`fetch_gguf`), kept
    next to it in the cache and rebuilt when the GGUF is newer (reading the GGUF takes
    seconds; the copy loads in milliseconds)."""
    gguf = Path(gguf_path) if gguf_path is not None else fetch_gguf()
    target = gguf.with_name(f"{gguf.stem}.v{SPM_BUILD_VERSION}.tokenizer.model")
    if not target.is_file() or target.stat().st_mtime < gguf.stat().st_mtime:
        partial = build_sentencepiece_model(gguf, target.with_suffix(".partial"))
        partial.replace(target)
    return target


def write_llama2_chat_tokenizer_dir(
    folder: str | Path, gguf_path: str | Path | None = None
) -> Path:
    """Write the tokenizer files meta-llama/Llama-2-7b-chat-hf ships for its slow tokenizer:
    ``tokenizer.model``, ``tokenizer_config.json`` and ``special_tokens_map.json`` (no
    ``tokenizer.json``). ``gguf_path`` defaults to :func:`fetch_gguf`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached_sentencepiece_model(gguf_path), folder / "tokenizer.model")
    (folder / "tokenizer_config.json").write_text(
        json.dumps(LLAMA2_CHAT_TOKENIZER_CONFIG, indent=2) + "\n", encoding="utf-8"
    )
    (folder / "special_tokens_map.json").write_text(
        json.dumps(LLAMA2_CHAT_SPECIAL_TOKENS_MAP, indent=2) + "\n", encoding="utf-8"
    )
    return folder


def slow_llama_tokenizer_class() -> type:
    """transformers 4.x's slow ``LlamaTokenizer`` (as of 4.44.2, LLaMo's version) rebuilt on
    transformers 5.x's :class:`~transformers.SentencePieceBackend`.

    transformers 5.x has no slow Llama tokenizer any more: ``LlamaTokenizer`` is the
    ``tokenizers``-backed class and ``use_fast=False`` is ignored. ``SentencePieceBackend``
    keeps 4.x's ``legacy=False`` ``_tokenize`` (dummy prefix switched off, ``<unk>`` trick for a
    leading space) but not the ``tokenize`` override that puts the ``▁`` prefix back at the
    start of the text, nor Llama's ``add_bos_token``/``add_eos_token``; this class adds both,
    copied from 4.44.2.
    """
    from transformers import SentencePieceBackend
    from transformers.tokenization_utils_sentencepiece import SPIECE_UNDERLINE

    class LlamaSlowTokenizer(SentencePieceBackend):
        model_input_names: ClassVar[list[str]] = ["input_ids", "attention_mask"]

        def __init__(
            self,
            vocab_file: str,
            add_bos_token: bool = True,
            add_eos_token: bool = False,
            add_prefix_space: bool = True,
            legacy: bool | None = None,
            **kwargs: Any,
        ) -> None:
            self.add_bos_token = add_bos_token
            self.add_eos_token = add_eos_token
            self.add_prefix_space = add_prefix_space
            super().__init__(
                vocab_file=vocab_file,
                legacy=True if legacy is None else legacy,
                add_bos_token=add_bos_token,
                add_eos_token=add_eos_token,
                add_prefix_space=add_prefix_space,
                **kwargs,
            )

        def tokenize(self, text: str, **kwargs: Any) -> list[str]:
            if self.legacy or len(text) == 0:
                return super().tokenize(text, **kwargs)
            text = text.replace(SPIECE_UNDERLINE, " ")
            if self.add_prefix_space:
                text = SPIECE_UNDERLINE + text
            tokens = super().tokenize(text, **kwargs)
            if (
                len(tokens) > 1
                and tokens[0] == SPIECE_UNDERLINE
                and tokens[1] in self.all_special_tokens
            ):
                tokens = tokens[1:]
            return tokens

        def build_inputs_with_special_tokens(
            self, token_ids_0: list[int], token_ids_1: list[int] | None = None
        ) -> list[int]:
            bos = [self.bos_token_id] if self.add_bos_token else []
            eos = [self.eos_token_id] if self.add_eos_token else []
            out = bos + token_ids_0 + eos
            return out if token_ids_1 is None else out + bos + token_ids_1 + eos

        def get_special_tokens_mask(
            self,
            token_ids_0: list[int],
            token_ids_1: list[int] | None = None,
            already_has_special_tokens: bool = False,
        ) -> list[int]:
            if already_has_special_tokens:
                return super().get_special_tokens_mask(token_ids_0, token_ids_1, True)
            bos = [1] if self.add_bos_token else []
            eos = [1] if self.add_eos_token else []
            out = bos + [0] * len(token_ids_0) + eos
            return out if token_ids_1 is None else out + bos + [0] * len(token_ids_1) + eos

    return LlamaSlowTokenizer
