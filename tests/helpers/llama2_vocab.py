"""The Llama-2 SentencePiece vocabulary for prompt tests, fetched from PyPI into a cache.

The ``llama-cpp-python==0.3.36`` source distribution carries
``vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf`` (the Llama-2 vocabulary, no weights),
which transformers loads with ``AutoTokenizer.from_pretrained(folder, gguf_file=...)``.
It is downloaded once (about 76 MB), the vocabulary file extracted, and the sdist deleted.
Nothing of it is committed to the repository.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

SDIST = "llama-cpp-python==0.3.36"
MEMBER = "vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf"
GGUF_NAME = "ggml-vocab-llama-spm.gguf"


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
