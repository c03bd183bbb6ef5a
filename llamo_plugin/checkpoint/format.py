"""Our model format: a directory with a typed config, safetensors weights and checksums.

Layout::

    model_dir/
      llamo_config.json      LlamoConfig (graph, projector, prompt, decode)
      graph.safetensors      GIN encoder + projector (fp32), keys ``encoder.*``, ``projector.*``
      lm/                    a plain Hugging Face causal-LM directory (loadable by transformers
        config.json          and vLLM as is): config, ``model.safetensors`` and tokenizer files
        model.safetensors
        tokenizer.json ...
      graph.onnx             optional: the graph tokenizer exported to ONNX (``llamo export-onnx``)
      manifest.json          sha256 and size of every file above, and the model checksum

Loading checks every file's size against the manifest on every load, and every sha256 once per
model checksum and file state (a corrupted or edited file is refused with
:class:`~llamo_plugin.errors.CheckpointError`): a verified directory leaves a stamp (each file's
size and modification time) in ``~/.cache/llamo-plugin/verified/``, so the next load (a KNIME
node execution, a worker process) does not read 13 GB of a converted 7B checkpoint again.
``verify="full"`` (``llamo info --verify``, the Model Selector's execute) always hashes. Then
every tensor is loaded strictly: no missing, unexpected or mis-shaped keys. Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Literal

from llamo_plugin.config import LlamoConfig
from llamo_plugin.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CONFIG = "llamo_config.json"
GRAPH_WEIGHTS = "graph.safetensors"
LM_DIR = "lm"
LM_WEIGHTS = "model.safetensors"
FORMAT_ID = "llamo-plugin/1"


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


#: Files derived from the weights: verified like the others, but not part of the model
#: checksum (exporting ONNX does not change what the model answers, nor its cache keys).
DERIVED_FILES = frozenset({"graph.onnx"})
ONNX_GRAPH = "graph.onnx"


def _model_checksum(files: dict[str, dict[str, Any]]) -> str:
    """One id for the whole model: sha256 over the sorted (path, sha256) pairs of every file
    except the :data:`DERIVED_FILES`."""
    text = "\n".join(
        f"{k} {v['sha256']}" for k, v in sorted(files.items()) if k not in DERIVED_FILES
    )
    return hashlib.sha256(text.encode()).hexdigest()


def write_manifest(model_dir: Path) -> dict[str, Any]:
    """Hash every file under ``model_dir`` (except the manifest) and write ``manifest.json``."""
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(model_dir).as_posix()
        if rel == MANIFEST:
            continue
        files[rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    manifest = {"format": FORMAT_ID, "model_sha256": _model_checksum(files), "files": files}
    (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


Verify = bool | Literal["full"]


def verified_stamp_dir() -> Path:
    """Where verification stamps live: ``verified/`` in the project's cache folder."""
    from llamo_plugin.cache import cache_dir

    return cache_dir() / "verified"


def _file_states(model_dir: Path, files: dict[str, Any]) -> dict[str, list[int]]:
    states = {}
    for rel in sorted(files):
        st = (model_dir / rel).stat()
        states[rel] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return states


def _stamp_path(model_dir: Path, manifest: dict[str, Any]) -> Path:
    where = hashlib.sha256(str(model_dir.resolve()).encode()).hexdigest()[:16]
    return verified_stamp_dir() / f"{manifest['model_sha256']}-{where}.json"


def _stamp_matches(model_dir: Path, manifest: dict[str, Any]) -> bool:
    try:
        stamp = json.loads(_stamp_path(model_dir, manifest).read_text())
        return bool(stamp["files"] == _file_states(model_dir, manifest["files"]))
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _write_stamp(model_dir: Path, manifest: dict[str, Any]) -> None:
    """Remember a full verification (best effort: a read-only home only costs re-hashing)."""
    path = _stamp_path(model_dir, manifest)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        stamp = {
            "model_dir": str(model_dir.resolve()),
            "files": _file_states(model_dir, manifest["files"]),
        }
        tmp.write_text(json.dumps(stamp))
        tmp.replace(path)
    except OSError as exc:
        logger.debug("could not write the verification stamp %s: %s", path, exc)


def verify_manifest(model_dir: Path, *, full: bool = True) -> dict[str, Any]:
    """Check every listed file's size and sha256; raise ``CheckpointError`` on any mismatch.

    ``full=False``: sizes always, but the sha256 of every file only when no stamp of an
    earlier full verification matches the files' current state (size, modification time,
    inode); a full verification writes the stamp.
    """
    path = model_dir / MANIFEST
    if not path.is_file():
        raise CheckpointError(f"{model_dir}: no {MANIFEST}; not a model directory in our format")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: unreadable manifest ({exc})") from exc
    if manifest.get("format") != FORMAT_ID:
        raise CheckpointError(f"{path}: unknown format {manifest.get('format')!r}")
    for rel, meta in manifest["files"].items():
        file = model_dir / rel
        if not file.is_file():
            raise CheckpointError(f"{model_dir}: file {rel} listed in the manifest is missing")
        if file.stat().st_size != meta["bytes"]:
            raise CheckpointError(
                f"{file}: size {file.stat().st_size} != {meta['bytes']} in the manifest "
                "(truncated or modified file)"
            )
    if _model_checksum(manifest["files"]) != manifest.get("model_sha256"):
        raise CheckpointError(f"{path}: model checksum does not match the file list")
    if not full and _stamp_matches(model_dir, manifest):
        return manifest
    for rel, meta in manifest["files"].items():
        file = model_dir / rel
        if sha256_file(file) != meta["sha256"]:
            raise CheckpointError(
                f"{file}: sha256 does not match the manifest (corrupted or modified file)"
            )
    _write_stamp(model_dir, manifest)
    return manifest


def read_manifest(model_dir: str | Path) -> dict[str, Any]:
    """The manifest, unverified (cheap; use for the model checksum)."""
    return json.loads((Path(model_dir) / MANIFEST).read_text())


def _unique_state_dict(module: Any) -> tuple[dict[str, Any], list[str]]:
    """State dict without aliases (tied weights); returns (tensors, dropped alias names)."""
    seen: dict[tuple[int, tuple[int, ...]], str] = {}
    out: dict[str, Any] = {}
    aliases: list[str] = []
    for name, tensor in module.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tuple(tensor.shape))
        if tensor.numel() and key in seen:
            aliases.append(name)
            continue
        seen[key] = name
        out[name] = tensor.detach().contiguous()
    return out, aliases


def save_model(model: Any, path: str | Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Write ``model`` (a :class:`~llamo_plugin.model.llamo.LlamoModel`) in our format.

    Returns the manifest. The directory is written under a temporary name and renamed at the
    end, so an interrupted save never leaves a half-written model behind.
    """
    from safetensors.torch import save_file

    target = Path(path)
    if target.exists() and not overwrite:
        raise CheckpointError(f"{target} exists; pass overwrite=True to replace it")
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / LM_DIR).mkdir(parents=True)

    (tmp / CONFIG).write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    graph_sd, _ = _unique_state_dict(model.graph)
    save_file(graph_sd, tmp / GRAPH_WEIGHTS, metadata={"format": "pt"})
    lm_sd, aliases = _unique_state_dict(model.lm)
    if aliases:
        logger.info("not storing tied aliases %s", aliases)
    save_file(lm_sd, tmp / LM_DIR / LM_WEIGHTS, metadata={"format": "pt"})
    # vLLM picks the model class from ``architectures`` (without it, it guesses a headless model).
    model.lm.config.architectures = [type(model.lm).__name__]
    model.lm.config.save_pretrained(tmp / LM_DIR)
    model.tokenizer.save_pretrained(tmp / LM_DIR)
    manifest = write_manifest(tmp)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    model.checksum = manifest["model_sha256"]
    return manifest


def _check_keys(
    expected: dict[str, Any],
    stored: dict[str, tuple[int, ...]],
    where: str,
    allowed_missing: set[str],
) -> None:
    """Raise ``CheckpointError`` unless ``stored`` names exactly the expected tensors/shapes."""
    missing = sorted(set(expected) - set(stored) - allowed_missing)
    unexpected = sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: key mismatch; missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}"
        )
    for name, shape in stored.items():
        if tuple(shape) != tuple(expected[name].shape):
            raise CheckpointError(
                f"{where}: {name} has shape {tuple(shape)}, the model expects "
                f"{tuple(expected[name].shape)}"
            )


def _load_strict(module: Any, tensors: dict[str, Any], where: str) -> None:
    """Load ``tensors`` into ``module`` (possibly on the meta device) with exact keys/shapes."""
    _check_keys(module.state_dict(), {k: tuple(v.shape) for k, v in tensors.items()}, where, set())
    module.load_state_dict(tensors, strict=True, assign=True)


class InputEmbeddingsOnly:
    """The LM's input embedding table alone (``[vocab, D]``), for backends that run the LM
    themselves (vLLM loads ``lm/`` on its own): a 7B checkpoint then costs its 0.26 GB
    embedding table here instead of 13 GB of weights held twice."""

    def __init__(self, config: Any, weight: Any) -> None:
        import torch

        self.config = config
        self._embed = torch.nn.Embedding.from_pretrained(weight, freeze=True)

    def get_input_embeddings(self) -> Any:
        return self._embed

    @property
    def dtype(self) -> Any:
        return self._embed.weight.dtype

    def parameters(self) -> Any:
        return self._embed.parameters()

    def to(self, device: Any) -> InputEmbeddingsOnly:
        self._embed.to(device)
        return self

    def eval(self) -> InputEmbeddingsOnly:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("this model holds only the LM's input embeddings (its LM runs in vLLM)")


def _input_embeddings_only(lm_dir: Path, hf_config: Any, dtype: Any, device: str) -> Any:
    """:class:`InputEmbeddingsOnly` read from ``lm/model.safetensors`` (one tensor)."""
    from safetensors import safe_open

    with safe_open(lm_dir / LM_WEIGHTS, framework="pt") as fh:
        keys = [k for k in fh.keys() if k.endswith("embed_tokens.weight")]  # noqa: SIM118
        if len(keys) != 1:
            raise CheckpointError(f"{lm_dir / LM_WEIGHTS}: no single input embedding table")
        weight = fh.get_tensor(keys[0])
    if dtype is not None:
        weight = weight.to(dtype)
    return InputEmbeddingsOnly(hf_config, weight).to(device)


def _load_full_lm(lm_dir: Path, hf_config: Any, dtype: Any, device: str) -> Any:
    """The whole causal LM, its keys and shapes checked strictly first."""
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    # Strict key/shape check against the architecture before transformers loads the file
    # (transformers itself only warns about missing or unexpected keys).
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(hf_config)
    with safe_open(lm_dir / LM_WEIGHTS, framework="pt") as fh:
        stored = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
    tied = {"lm_head.weight"} if getattr(hf_config, "tie_word_embeddings", False) else set()
    _check_keys(skeleton.state_dict(), stored, str(lm_dir / LM_WEIGHTS), tied)
    del skeleton
    from transformers.utils import logging as hf_logging

    # transformers' "Loading weights" bar, once per load (three times a run), is noise here.
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        lm = AutoModelForCausalLM.from_pretrained(
            lm_dir, dtype=dtype if dtype is not None else "auto", local_files_only=True
        ).to(device)
    finally:
        if bar:
            hf_logging.enable_progress_bar()

    return lm


def read_config(model_dir: str | Path) -> LlamoConfig:
    """The model directory's :class:`LlamoConfig` (tasks, decoding, retrieval default) without
    loading any weight; ``CheckpointError`` when missing or invalid."""
    path = Path(model_dir) / CONFIG
    try:
        return LlamoConfig.from_dict(json.loads(path.read_text()))
    except (OSError, ConfigError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: {exc}") from exc


def load_model(
    path: str | Path,
    *,
    device: str = "cpu",
    dtype: Any = None,
    verify: Verify = True,
    lm_weights: Literal["all", "embeddings"] = "all",
) -> Any:
    """Load a model directory written by :func:`save_model` (or the converter).

    Args:
        path: the model directory.
        device: where to put the model (``"cpu"``, ``"cuda"``, ...).
        dtype: LM dtype override (e.g. ``torch.bfloat16``); default: as stored.
        verify: check the files against the manifest first: ``True`` (default) sizes always
            and sha256 once per file state (:func:`verify_manifest` with ``full=False``),
            ``"full"`` every sha256 now, ``False`` nothing.
        lm_weights: ``"embeddings"`` loads only the LM's input embedding table
            (:class:`InputEmbeddingsOnly`): enough to build prompt embeddings for a backend
            that loads the LM itself (vLLM); the model cannot generate on its own then.
    """
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer

    from llamo_plugin.model.llamo import LlamoModel

    model_dir = Path(path)
    if not model_dir.is_dir():
        raise CheckpointError(f"{model_dir}: no such model directory")
    if verify:
        manifest = verify_manifest(model_dir, full=verify == "full")
    else:
        manifest = read_manifest(model_dir)
    config = read_config(model_dir)
    lm_dir = model_dir / LM_DIR
    tokenizer = AutoTokenizer.from_pretrained(lm_dir, local_files_only=True)
    hf_config = AutoConfig.from_pretrained(lm_dir, local_files_only=True)
    if lm_weights == "embeddings":
        lm = _input_embeddings_only(lm_dir, hf_config, dtype, device)
    else:
        lm = _load_full_lm(lm_dir, hf_config, dtype, device)

    with torch.device("meta"):
        model = LlamoModel(config, lm, tokenizer)
    graph_tensors = load_file(model_dir / GRAPH_WEIGHTS, device=str(device))
    _load_strict(model.graph, graph_tensors, str(model_dir / GRAPH_WEIGHTS))
    model.checksum = manifest["model_sha256"]
    model.eval()
    return model
