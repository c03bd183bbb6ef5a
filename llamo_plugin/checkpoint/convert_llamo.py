"""Convert the official LLaMo Lightning checkpoint (reference §11) to our model format.

The released ``.ckpt`` holds ``state_dict`` with 565 keys, all prefixed ``mllm.``. After the
prefix is stripped, :data:`KEY_RULES` routes every key (the first full match wins):

=====================================================================  =================  ======
official key (after ``mllm.``)                                         ours               kind
=====================================================================  =================  ======
``graph_model.molecule_node_model.<gin>``                              ``encoder.<gin>``  graph
``ln_graph_model.{weight,bias}`` (never affects the output, §3)        dropped, reported  dead
``abstractor.cross_attention.{k}.<mha>``                               see below          level
``abstractor.<other projector parameter>``                             ``projector.<..>`` graph
``language_model.base_model.model.<llama>.weight``                     ``<llama>.weight`` lm
``language_model.base_model.model.<lin>.base_layer.weight``            ``<lin>.weight``   lm
``language_model.base_model.model.<lin>.lora_{A,B}.default.weight``    merged into above  lora
=====================================================================  =================  ======

``<gin>`` is exactly the GIN's parameter and buffer names (atom/bond embedding tables,
``gnns.{l}.{eps,mlp.{0,1,3}.*}``, ``batch_norms.{l}.*``), ``<llama>`` the Llama names
(``model.embed_tokens``, ``model.layers.{i}.{self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj,
input_layernorm, post_attention_layernorm}``, ``model.norm``, ``lm_head``). Anything else makes
the conversion fail with :class:`~llamo_plugin.errors.CheckpointError` naming the keys: nothing
is dropped silently.

Level attention: the released code lists one shared ``nn.MultiheadAttention`` six times
(``cross_attention.0`` .. ``.5``, same storage). The copies are checked to be bitwise identical.
Converting to our shared layout (``shared_level_attention=True``) keeps ``.0`` and refuses
non-identical copies; converting to per-level modules maps each ``.k`` to its own module (a
private copy, so the saved file holds no aliases), or replicates ``.0`` if it is the only one.

LoRA (peft, adapter ``default``) is merged: ``W = W0 + (alpha / r) * B @ A`` computed in fp32
and cast to the base weight's dtype (``r`` read from A's shape; alpha 32 for LLaMo, so the
scaling is 4). The result is a plain Llama checkpoint.

Memory: the checkpoint is memory-mapped (``torch.load(mmap=True)``), the model is built on the
meta device and the tensors are assigned (``load_state_dict(assign=True)``), so the 13.5 GB of
bf16 Llama weights are never copied; only the merged q/v projections are new tensors.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle
import re
import types
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch

from llamo_plugin.config import GraphEncoderConfig, LlamoConfig, ProjectorConfig
from llamo_plugin.errors import CheckpointError, ConfigError, UntrustedPickleError
from llamo_plugin.tasks import OFFICIAL_TASKS

logger = logging.getLogger(__name__)

#: Prefix of every key in the official ``state_dict`` (the Lightning module's ``mllm``).
OFFICIAL_PREFIX = "mllm."
GNN_PREFIX = "graph_model.molecule_node_model."
DEAD_PREFIX = "ln_graph_model."
PROJECTOR_PREFIX = "abstractor."
LM_PREFIX = "language_model.base_model.model."

#: Llama-2's vocabulary; LLaMo adds ``<pad>`` as id 32000, giving 32001 rows.
LLAMA2_VOCAB = 32000
#: Llama-2 head width (hidden 4096 / 32 heads); used to infer the head count from shapes.
LLAMA_HEAD_DIM = 128
#: LLaMo's LoRA alpha (reference §7; the ``--lora_alpha`` flag of the original is ignored).
LLAMO_LORA_ALPHA = 32.0

Target = Literal["graph", "level_attention", "lm", "lora_A", "lora_B", "dead"]

_BN = r"(?:weight|bias|running_mean|running_var|num_batches_tracked)"
_MHA = r"(?:in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias)"
_LIN = r"model\.layers\.\d+\.(?:self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)"
_LM = re.escape(LM_PREFIX)
_GNN = re.escape(GNN_PREFIX)

#: The key map: (official name pattern after ``mllm.``, target, our name template).
KEY_RULES: tuple[tuple[re.Pattern[str], Target, str], ...] = tuple(
    (re.compile(pattern), target, template)
    for pattern, target, template in (
        # --- GIN encoder (99 keys at LLaMo size) -> graph module ``encoder.*``
        (_GNN + r"(atom_encoder\.atom_embedding_list\.\d+\.weight)", "graph", r"encoder.\1"),
        (
            _GNN
            + r"(gnns\.\d+\.(?:eps|mlp\.[03]\.(?:weight|bias)|mlp\.1\."
            + _BN
            + r"|bond_encoder\.bond_embedding_list\.\d+\.weight))",
            "graph",
            r"encoder.\1",
        ),
        (_GNN + r"(batch_norms\.\d+\." + _BN + ")", "graph", r"encoder.\1"),
        # --- the dead LayerNorm on the pooled graph vector (2 keys)
        (re.escape(DEAD_PREFIX) + r"(?:weight|bias)", "dead", r"\g<0>"),
        # --- projector (45 keys, 24 of them the shared level MHA listed six times)
        (r"abstractor\.(cross_attention\.\d+\." + _MHA + ")", "level_attention", r"projector.\1"),
        (
            r"abstractor\.(query_tokens|motif_query_tokens|motif_weight\.weight"
            r"|motif_cross_attention\." + _MHA + r"|layer_norm\.(?:weight|bias)"
            r"|net\.\d+\.(?:weight|bias))",
            "graph",
            r"projector.\1",
        ),
        # --- Llama inside peft's wrapper (419 keys at 7B)
        (_LM + r"(model\.embed_tokens\.weight|model\.norm\.weight|lm_head\.weight)", "lm", r"\1"),
        (_LM + r"(model\.layers\.\d+\.(?:input|post_attention)_layernorm\.weight)", "lm", r"\1"),
        (_LM + "(" + _LIN + r")\.(?:base_layer\.)?weight", "lm", r"\1.weight"),
        (_LM + "(" + _LIN + r")\.lora_A\.default\.weight", "lora_A", r"\1.weight"),
        (_LM + "(" + _LIN + r")\.lora_B\.default\.weight", "lora_B", r"\1.weight"),
    )
)


def map_official_key(name: str) -> tuple[Target, str] | None:
    """Route one official key (with or without ``mllm.``) to ``(target, our name)``.

    ``target`` is ``"graph"`` (a key of our graph module), ``"level_attention"`` (a copy of the
    level MHA, resolved by :func:`convert_state_dict`), ``"lm"`` (a plain Llama key),
    ``"lora_A"``/``"lora_B"`` (our name is the Llama weight it merges into) or ``"dead"``.
    Returns ``None`` for a key the map does not know.
    """
    if name.startswith(OFFICIAL_PREFIX):
        name = name[len(OFFICIAL_PREFIX) :]
    for pattern, target, template in KEY_RULES:
        match = pattern.fullmatch(name)
        if match:
            return target, match.expand(template)
    return None


@dataclass(frozen=True)
class ConversionReport:
    """What a conversion did.

    Attributes:
        n_keys: tensors in the official ``state_dict`` (565 for the released checkpoint).
        n_graph / n_projector / n_lm: keys under ``graph_model`` (99), ``abstractor`` (45) and
            ``language_model`` (419, LoRA included).
        n_lora_merged: linear layers whose LoRA was merged (64 at 7B: q and v of 32 layers).
        dead_keys: official keys dropped because they never affect the output.
        shared_attention_identical: whether every ``cross_attention.{k}`` copy equals ``.0``.
        lm_config: a summary of the language model's config.
        lora_scaling: ``alpha / r`` of the merged adapters (None without LoRA).
        shared_level_attention / token_order: the projector layout written.
        metadata_keys: the Lightning checkpoint's other top-level entries (not converted).
        model_sha256: the written model's checksum (set once saved).
    """

    n_keys: int
    n_graph: int
    n_projector: int
    n_lm: int
    n_lora_merged: int
    dead_keys: tuple[str, ...]
    shared_attention_identical: bool
    lm_config: dict[str, Any] = field(default_factory=dict)
    lora_scaling: float | None = None
    shared_level_attention: bool = True
    token_order: str = "motif_first"
    metadata_keys: tuple[str, ...] = ()
    model_sha256: str | None = None

    def lines(self) -> list[str]:
        """Human-readable summary, one fact per line (for logging)."""
        return [
            f"official keys: {self.n_keys} (GNN {self.n_graph}, projector {self.n_projector}, "
            f"LM {self.n_lm}, dead {len(self.dead_keys)})",
            f"dead keys dropped: {list(self.dead_keys)}",
            f"level cross-attention copies identical: {self.shared_attention_identical}; "
            f"written as {'one shared module' if self.shared_level_attention else 'per level'}",
            f"LoRA merged into {self.n_lora_merged} linears (scaling {self.lora_scaling})",
            f"token order: {self.token_order}",
            f"LM: {self.lm_config}",
            f"checkpoint metadata not converted: {list(self.metadata_keys)}",
            f"model sha256: {self.model_sha256}",
        ]


# ------------------------------------------------------------------------------ file reading
class _MissingGlobal(dict):  # type: ignore[type-arg]
    """Stand-in for a pickled class whose module is not installed (e.g. Lightning's
    ``AttributeDict`` or an omegaconf config in ``hyper_parameters``); keeps the raw data."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.pickled_args = args

    def __setstate__(self, state: Any) -> None:
        self.pickled_state = state

    def append(self, item: Any) -> None:
        self.setdefault("_items", []).append(item)

    def extend(self, items: Any) -> None:
        self.setdefault("_items", []).extend(items)


class _TolerantUnpickler(pickle.Unpickler):
    """A normal unpickler, except that classes from uninstalled modules become stubs."""

    missing: ClassVar[set[str]] = set()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            _TolerantUnpickler.missing.add(f"{module}.{name}")
            return type(name, (_MissingGlobal,), {"__module__": "llamo_plugin.missing"})


#: ``pickle_module`` for ``torch.load(weights_only=False)``; only used after opt-in.
_TOLERANT_PICKLE = types.SimpleNamespace(
    __name__="llamo_tolerant_pickle",
    Unpickler=_TolerantUnpickler,
    load=lambda fh, **kw: _TolerantUnpickler(fh, **kw).load(),
)


def _torch_load(path: Path, *, weights_only: bool) -> Any:
    """``torch.load`` to CPU, memory-mapped when the file format allows it."""
    kwargs: dict[str, Any] = {"map_location": "cpu", "weights_only": weights_only}
    if not weights_only:
        kwargs["pickle_module"] = _TOLERANT_PICKLE
    try:
        return torch.load(path, mmap=True, **kwargs)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise
        logger.info("%s: legacy (non-zip) format, loading without mmap", path)
        return torch.load(path, **kwargs)


def read_checkpoint(path: str | Path, *, trust_pickle: bool) -> Any:
    """Unpickle the checkpoint file (weights only unless ``trust_pickle``).

    Raises:
        UntrustedPickleError: the file needs arbitrary unpickling and ``trust_pickle`` is False.
        CheckpointError: missing or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        return _torch_load(path, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" not in str(exc).lower():
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({exc})") from exc
        if not trust_pickle:
            raise UntrustedPickleError(
                f"{path} contains pickled Python objects besides tensors (e.g. Lightning "
                "hyper_parameters); loading them can execute arbitrary code. Pass "
                "--trust-pickle (trust_pickle=True) only if you trust where the file came from."
            ) from exc
    logger.warning("%s: loading with weights_only=False (trusted by the user)", path)
    _TolerantUnpickler.missing = set()
    try:
        obj = _torch_load(path, weights_only=False)
    except (pickle.UnpicklingError, EOFError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({exc})") from exc
    if _TolerantUnpickler.missing:
        logger.warning(
            "classes not installed here, kept as plain stubs: %s",
            sorted(_TolerantUnpickler.missing),
        )
    return obj


def extract_state_dict(obj: Any) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """``(state_dict, other top-level keys)`` from a Lightning dict or a bare state dict."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint holds a {type(obj).__name__}, not a mapping")
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        sd, meta = obj["state_dict"], tuple(sorted(str(k) for k in obj if k != "state_dict"))
    else:
        sd, meta = obj, ()
    not_tensors = sorted(str(k) for k, v in sd.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise CheckpointError(f"state_dict entries that are not tensors: {not_tensors[:10]}")
    return dict(sd), meta


def load_official_state_dict(path: str | Path, *, trust_pickle: bool) -> dict[str, torch.Tensor]:
    """The official checkpoint's ``state_dict`` (memory-mapped, CPU), keys as stored.

    First tries ``torch.load(weights_only=True, mmap=True)``; a Lightning file whose
    ``hyper_parameters`` need arbitrary unpickling raises :class:`UntrustedPickleError` unless
    ``trust_pickle`` is set, in which case it is loaded with ``weights_only=False``.
    """
    return extract_state_dict(read_checkpoint(path, trust_pickle=trust_pickle))[0]


# ------------------------------------------------------------------------- core conversion
def _bitwise_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True if ``a`` and ``b`` hold the same bits (same dtype and shape)."""
    if a is b:
        return True
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.is_meta or b.is_meta:
        raise CheckpointError("cannot compare meta tensors that are distinct objects")
    if (
        a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
        and a.storage_offset() == b.storage_offset()
        and a.stride() == b.stride()
    ):
        return True
    return torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8))


def _graph_tensor(t: torch.Tensor) -> torch.Tensor:
    """Graph tensors are fp32 (reference §3 precision); integer buffers stay as they are."""
    return t.to(torch.float32) if t.is_floating_point() else t


def resolve_level_attention(
    copies: Mapping[str, torch.Tensor], num_levels: int, *, shared: bool
) -> tuple[dict[str, torch.Tensor], bool]:
    """Map the ``projector.cross_attention.{k}.*`` copies onto our layout.

    Args:
        copies: our names (``projector.cross_attention.{k}.<param>``) -> tensors.
        num_levels: projector levels (``query_tokens.shape[0]``).
        shared: write one shared module (``cross_attention.0``) or one per level.

    Returns:
        (tensors for our graph module, whether every copy is bitwise identical to ``.0``).
    """
    by_index: dict[int, dict[str, torch.Tensor]] = defaultdict(dict)
    for name, tensor in copies.items():
        index, param = name.removeprefix("projector.cross_attention.").split(".", 1)
        by_index[int(index)][param] = tensor
    if 0 not in by_index:
        raise CheckpointError("abstractor.cross_attention.0.* is missing")
    if set(by_index) not in ({0}, set(range(num_levels))):
        raise CheckpointError(
            f"abstractor.cross_attention has copies {sorted(by_index)}; "
            f"expected 0..{num_levels - 1}"
        )
    ref = by_index[0]
    for index, params in by_index.items():
        if set(params) != set(ref):
            raise CheckpointError(
                f"abstractor.cross_attention.{index} has {sorted(params)}, .0 has {sorted(ref)}"
            )
    differing = sorted(
        f"abstractor.cross_attention.{i}.{p}"
        for i, params in by_index.items()
        for p, t in params.items()
        if not _bitwise_equal(t, ref[p])
    )
    identical = not differing
    out: dict[str, torch.Tensor] = {}
    if shared:
        if differing:
            raise CheckpointError(
                "the level cross-attention copies are not identical to cross_attention.0 "
                f"({differing[:8]}), so they cannot be loaded as one shared module; convert with "
                "shared_level_attention=False (one module per level) instead"
            )
        for param, tensor in ref.items():
            out[f"projector.cross_attention.0.{param}"] = _graph_tensor(tensor)
        return out, identical
    if differing:
        logger.warning("level cross-attention copies differ from .0: %s", differing)
    for level in range(num_levels):
        params = by_index.get(level, ref)
        for param, tensor in params.items():
            t = _graph_tensor(tensor)
            # Private copies: the official copies share storage, and aliases are not saved.
            out[f"projector.cross_attention.{level}.{param}"] = t if level == 0 else t.clone()
    return out, identical


def merge_lora_weight(
    base: torch.Tensor,
    lora_a: torch.Tensor,
    lora_b: torch.Tensor,
    *,
    lora_alpha: float,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``W0 + (alpha / r) * B @ A`` in fp32, cast to ``out_dtype`` (default: ``W0``'s dtype).

    Shapes: base ``[out, in]``, lora_a ``[r, in]``, lora_b ``[out, r]`` -> ``[out, in]``.
    """
    rank = lora_a.shape[0]
    if (
        lora_a.dim() != 2
        or lora_b.dim() != 2
        or lora_b.shape[1] != rank
        or tuple(base.shape) != (lora_b.shape[0], lora_a.shape[1])
    ):
        raise CheckpointError(
            f"LoRA shapes do not fit: W0 {tuple(base.shape)}, A {tuple(lora_a.shape)}, "
            f"B {tuple(lora_b.shape)}"
        )
    delta = (lora_b.float() @ lora_a.float()) * (lora_alpha / rank)
    return (base.float() + delta).to(out_dtype or base.dtype)


def _merge_lm(
    entries: Mapping[Target, Mapping[str, tuple[str, torch.Tensor]]],
    *,
    lora_alpha: float,
    dtype: torch.dtype | None,
) -> tuple[dict[str, torch.Tensor], int, float | None]:
    """Plain Llama tensors with LoRA merged: ``(state dict, n merged, scaling)``."""
    base, lora_a, lora_b = entries["lm"], entries["lora_A"], entries["lora_B"]
    orphans = sorted(
        [lora_a[n][0] for n in lora_a if n not in lora_b or n not in base]
        + [lora_b[n][0] for n in lora_b if n not in lora_a or n not in base]
    )
    if orphans:
        raise CheckpointError(f"LoRA tensors without their A/B partner or base weight: {orphans}")
    bare = sorted(
        orig
        for n, (orig, _) in base.items()
        if orig.endswith(".base_layer.weight") and n not in lora_a
    )
    if bare:
        raise CheckpointError(f"peft base_layer weights without LoRA tensors: {bare[:8]}")
    out: dict[str, torch.Tensor] = {}
    scalings: set[float] = set()
    for name, (_, tensor) in base.items():
        if name in lora_a:
            a, b = lora_a[name][1], lora_b[name][1]
            out[name] = merge_lora_weight(
                tensor, a, b, lora_alpha=lora_alpha, out_dtype=dtype or tensor.dtype
            )
            scalings.add(lora_alpha / a.shape[0])
        elif dtype is not None and tensor.is_floating_point():
            out[name] = tensor.to(dtype)
        else:
            out[name] = tensor
    if len(scalings) > 1:
        raise CheckpointError(f"LoRA adapters with different ranks (scalings {sorted(scalings)})")
    return out, len(lora_a), next(iter(scalings), None)


def convert_state_dict(
    sd: Mapping[str, torch.Tensor],
    *,
    lora_alpha: float = LLAMO_LORA_ALPHA,
    shared_level_attention: bool = True,
    dtype: torch.dtype | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], ConversionReport]:
    """The conversion core (no files): official state dict -> (graph, LM, report).

    Args:
        sd: the official ``state_dict`` (``mllm.``-prefixed keys; the prefix is optional).
        lora_alpha: LoRA alpha; the scaling is ``alpha / r`` with ``r`` from A's shape.
        shared_level_attention: target projector layout (see :func:`resolve_level_attention`).
        dtype: cast the LM to this dtype (default: keep the stored dtype, bf16 for LLaMo).

    Returns:
        ``graph_sd`` (keys of our ``GraphTokenizer``: ``encoder.*``, ``projector.*``; fp32),
        ``lm_sd`` (plain ``LlamaForCausalLM`` keys, LoRA merged) and the report (without the
        LM config).

    Raises:
        CheckpointError: unknown keys (all listed), two keys mapping to one name, inconsistent
            LoRA or level-attention tensors.
    """
    entries: dict[Target, dict[str, tuple[str, torch.Tensor]]] = defaultdict(dict)
    unknown: list[str] = []
    for name, tensor in sd.items():
        hit = map_official_key(name)
        if hit is None:
            unknown.append(name)
            continue
        target, new = hit
        if new in entries[target]:
            raise CheckpointError(f"{entries[target][new][0]} and {name} both map to {new}")
        entries[target][new] = (name, tensor)
    if unknown:
        raise CheckpointError(
            f"{len(unknown)} checkpoint key(s) not recognised by the LLaMo key map: "
            f"{sorted(unknown)[:20]}{' ...' if len(unknown) > 20 else ''}"
        )
    graph_sd = {new: _graph_tensor(t) for new, (_, t) in entries["graph"].items()}
    if "projector.query_tokens" not in graph_sd:
        raise CheckpointError("abstractor.query_tokens is missing")
    attention, identical = resolve_level_attention(
        {new: t for new, (_, t) in entries["level_attention"].items()},
        graph_sd["projector.query_tokens"].shape[0],
        shared=shared_level_attention,
    )
    graph_sd.update(attention)
    lm_sd, n_merged, scaling = _merge_lm(entries, lora_alpha=lora_alpha, dtype=dtype)

    stripped = [n.removeprefix(OFFICIAL_PREFIX) for n in sd]
    report = ConversionReport(
        n_keys=len(stripped),
        n_graph=sum(n.startswith("graph_model.") for n in stripped),
        n_projector=sum(n.startswith(PROJECTOR_PREFIX) for n in stripped),
        n_lm=sum(n.startswith("language_model.") for n in stripped),
        n_lora_merged=n_merged,
        dead_keys=tuple(sorted(orig for orig, _ in entries["dead"].values())),
        shared_attention_identical=identical,
        lora_scaling=scaling,
        shared_level_attention=shared_level_attention,
    )
    return graph_sd, lm_sd, report


# ---------------------------------------------------------------------------------- configs
def _indices(names: Any, pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for n in names if (m := rx.fullmatch(n))})


def infer_llamo_config(
    graph_sd: Mapping[str, torch.Tensor],
    *,
    token_order: Literal["motif_first", "motif_last"] = "motif_first",
    shared_level_attention: bool = True,
    name: str = "llamo-official",
) -> LlamoConfig:
    """Graph and projector config read from the tensor shapes (heads: 4, as hard-coded)."""

    def shape(key: str) -> tuple[int, ...]:
        if key not in graph_sd:
            raise CheckpointError(f"{key} is missing from the converted graph tensors")
        return tuple(graph_sd[key].shape)

    layers = _indices(graph_sd, r"encoder\.gnns\.(\d+)\.eps")
    atoms = _indices(graph_sd, r"encoder\.atom_encoder\.atom_embedding_list\.(\d+)\.weight")
    bonds = _indices(
        graph_sd, r"encoder\.gnns\.0\.bond_encoder\.bond_embedding_list\.(\d+)\.weight"
    )
    net = _indices(graph_sd, r"projector\.net\.(\d+)\.weight")
    levels, per_level, width = shape("projector.query_tokens")
    try:
        return LlamoConfig(
            name=name,
            description="Converted from the official LLaMo checkpoint (mlvlab/LLaMo).",
            tasks=OFFICIAL_TASKS,  # incl. LLaMo's reaction tasks (forward, retro)
            graph=GraphEncoderConfig(
                num_layers=len(layers),
                hidden_size=shape("encoder.atom_encoder.atom_embedding_list.0.weight")[1],
                atom_vocab_sizes=tuple(
                    shape(f"encoder.atom_encoder.atom_embedding_list.{i}.weight")[0] for i in atoms
                ),
                bond_vocab_sizes=tuple(
                    shape(f"encoder.gnns.0.bond_encoder.bond_embedding_list.{i}.weight")[0]
                    for i in bonds
                ),
            ),
            projector=ProjectorConfig(
                input_size=width,
                output_size=shape("projector.net.0.weight")[0],
                num_levels=levels,
                queries_per_level=per_level,
                num_motif_queries=shape("projector.motif_query_tokens")[0],
                motif_feature_size=shape("projector.motif_weight.weight")[1],
                mlp_depth=len(net),
                shared_level_attention=shared_level_attention,
                token_order=token_order,
            ),
        )
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint shapes give an invalid config: {exc}") from exc


def _read_base_config(base_config: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(base_config, Mapping):
        return dict(base_config)
    path = Path(base_config)
    if path.is_dir():
        path = path / "config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: cannot read the base config ({exc})") from exc


def infer_lm_config(
    lm_sd: Mapping[str, torch.Tensor],
    *,
    base_config: Mapping[str, Any] | str | Path | None = None,
    num_attention_heads: int | None = None,
    special_ids: tuple[int | None, int | None, int | None] | None = None,
) -> Any:
    """A ``LlamaConfig`` that fits the tensors.

    Without ``base_config`` it is read from the shapes: hidden and vocabulary from
    ``embed_tokens`` ``[vocab, hidden]``, layers from the key indices, FFN width from
    ``gate_proj``, heads ``hidden // 128`` (unless given), KV heads from ``k_proj``; plus
    Llama-2's RMSNorm eps 1e-5, RoPE theta 10000, 4096 positions, untied embeddings. With
    ``base_config`` (a ``config.json`` path or dict, e.g. Llama-2-7b-chat-hf's) that config is
    used, its vocabulary resized to the checkpoint's (32000 -> 32001) and every shape checked.

    ``special_ids`` = (bos, eos, pad); default (1, 2, 32000 if vocab > 32000 else None).
    """
    from transformers import LlamaConfig

    for key in (
        "model.embed_tokens.weight",
        "model.layers.0.mlp.gate_proj.weight",
        "model.layers.0.self_attn.k_proj.weight",
    ):
        if key not in lm_sd:
            raise CheckpointError(f"{key} is missing from the language model tensors")
    vocab, hidden = lm_sd["model.embed_tokens.weight"].shape
    layers = _indices(lm_sd, r"model\.layers\.(\d+)\.input_layernorm\.weight")
    if layers != list(range(len(layers))):
        raise CheckpointError(f"language model layer indices are not contiguous: {layers}")
    intermediate = lm_sd["model.layers.0.mlp.gate_proj.weight"].shape[0]
    kv_width = lm_sd["model.layers.0.self_attn.k_proj.weight"].shape[0]
    bos, eos, pad = special_ids or (1, 2, LLAMA2_VOCAB if vocab > LLAMA2_VOCAB else None)
    dtype = lm_sd["model.embed_tokens.weight"].dtype

    if base_config is not None:
        data = _read_base_config(base_config)
        if data.get("model_type", "llama") != "llama":
            raise CheckpointError(f"base config is {data.get('model_type')!r}, not llama")
        data = {k: v for k, v in data.items() if k not in ("torch_dtype", "dtype")}
        config = LlamaConfig.from_dict(data)
        if num_attention_heads is not None and num_attention_heads != config.num_attention_heads:
            raise CheckpointError("num_attention_heads disagrees with the base config")
        if config.vocab_size != vocab:
            logger.info(
                "base config vocabulary %d -> %d (checkpoint rows)", config.vocab_size, vocab
            )
            config.vocab_size = vocab
        heads = config.num_attention_heads
    else:
        heads = num_attention_heads or hidden // LLAMA_HEAD_DIM
        if heads < 1 or hidden % heads:
            raise CheckpointError(
                f"cannot infer the head count for hidden size {hidden}; pass "
                "num_attention_heads or the base model's config.json"
            )
        config = LlamaConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            intermediate_size=intermediate,
            num_hidden_layers=len(layers),
            num_attention_heads=heads,
            num_key_value_heads=kv_width // (hidden // heads),
            max_position_embeddings=4096,
            rms_norm_eps=1e-5,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            tie_word_embeddings=False,
            hidden_act="silu",
        )
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    expected = {
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": len(layers),
        "num_key_value_heads": kv_width // head_dim,
    }
    wrong = {k: (getattr(config, k), v) for k, v in expected.items() if getattr(config, k) != v}
    if wrong:
        raise CheckpointError(f"base config does not fit the checkpoint (config, ckpt): {wrong}")
    config.bos_token_id, config.eos_token_id, config.pad_token_id = bos, eos, pad
    config.dtype = dtype
    config.architectures = ["LlamaForCausalLM"]
    return config


def lm_config_summary(config: Any) -> dict[str, Any]:
    """The handful of LM config values worth logging."""
    keys = (
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "rms_norm_eps",
        "max_position_embeddings",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
    )
    summary = {k: getattr(config, k, None) for k in keys}
    summary["dtype"] = str(getattr(config, "dtype", None)).removeprefix("torch.")
    return summary


# ------------------------------------------------------------------- tokenizer and assembly
def prepare_tokenizer(tokenizer: Any, vocab_rows: int) -> Any:
    """Give ``tokenizer`` LLaMo's ``<pad>`` and check it fits the embedding table (in place).

    A tokenizer without a pad token gets ``<pad>`` added as a special token (id 32000 for
    Llama-2), as LLaMo did. One whose pad is some other existing token (GGUF files often say
    ``<unk>``) while the checkpoint has exactly one extra row gets ``<pad>`` too.

    Raises:
        CheckpointError: ``len(tokenizer) != vocab_rows``, or a 32001-row checkpoint whose pad
            id is not 32000, or no EOS token.
    """
    vocab = tokenizer.get_vocab()
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": "<pad>"})
        logger.info("added <pad> to the tokenizer as id %d", tokenizer.pad_token_id)
    elif len(tokenizer) == vocab_rows - 1 and "<pad>" not in vocab:
        logger.warning(
            "tokenizer pad token %r replaced by a new <pad> (LLaMo's setup)", tokenizer.pad_token
        )
        tokenizer.add_special_tokens({"pad_token": "<pad>"})
    if len(tokenizer) != vocab_rows:
        raise CheckpointError(
            f"the tokenizer has {len(tokenizer)} tokens but the checkpoint's embedding table "
            f"has {vocab_rows} rows; use the base model's tokenizer (Llama-2-7b-chat-hf)"
        )
    if vocab_rows == LLAMA2_VOCAB + 1 and tokenizer.pad_token_id != LLAMA2_VOCAB:
        raise CheckpointError(
            f"pad token id is {tokenizer.pad_token_id}, LLaMo's <pad> is {LLAMA2_VOCAB}"
        )
    if tokenizer.eos_token_id is None:
        raise CheckpointError("the tokenizer has no EOS token")
    return tokenizer


def assign_strict(module: torch.nn.Module, tensors: Mapping[str, torch.Tensor], where: str) -> None:
    """Load ``tensors`` into ``module`` (built on meta) with exactly its keys and shapes."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(
        f"{k}: {tuple(tensors[k].shape)} != {tuple(expected[k].shape)}"
        for k in set(expected) & set(tensors)
        if tensors[k].shape != expected[k].shape
    )
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{where}: converted tensors do not fit the model; missing {missing[:8]}, "
            f"unexpected {unexpected[:8]}, wrong shapes {wrong[:8]}"
        )
    module.load_state_dict(dict(tensors), strict=True, assign=True)


def build_converted_model(
    config: LlamoConfig,
    lm_config: Any,
    tokenizer: Any,
    graph_sd: Mapping[str, torch.Tensor],
    lm_sd: Mapping[str, torch.Tensor],
) -> Any:
    """A :class:`LlamoModel` built on the meta device, with the tensors assigned (no copies).

    Non-persistent buffers (RoPE ``inv_freq``) stay on meta: the result is for saving; reload
    it with :func:`~llamo_plugin.checkpoint.format.load_model` to run it.
    """
    from transformers import AutoModelForCausalLM

    from llamo_plugin.model.llamo import LlamoModel

    try:
        with torch.device("meta"):
            lm = AutoModelForCausalLM.from_config(lm_config)
            model = LlamoModel(config, lm, tokenizer)
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from exc
    assign_strict(model.graph, graph_sd, "graph encoder + projector")
    assign_strict(model.lm, lm_sd, "language model")
    model.eval()
    return model


def convert_official_checkpoint(
    ckpt_path: str | Path,
    out_dir: str | Path,
    tokenizer: Any,
    *,
    trust_pickle: bool = False,
    lora_alpha: float = LLAMO_LORA_ALPHA,
    base_config: Mapping[str, Any] | str | Path | None = None,
    token_order: Literal["motif_first", "motif_last"] = "motif_first",
    dtype: torch.dtype | None = None,
    overwrite: bool = False,
    shared_level_attention: bool = True,
    num_attention_heads: int | None = None,
) -> ConversionReport:
    """Convert the official LLaMo ``.ckpt`` into a model directory in our format.

    Args:
        ckpt_path: the Lightning checkpoint (or a bare state dict saved with ``torch.save``).
        out_dir: the model directory to write.
        tokenizer: the base model's HF tokenizer (Llama-2-7b-chat-hf); ``<pad>`` is added if
            missing (modified in place) and saved with the model.
        trust_pickle: allow arbitrary unpickling (needed for Lightning ``hyper_parameters``).
        lora_alpha: LoRA alpha (LLaMo: 32, scaling 4 at r=8).
        base_config: the base LM's ``config.json`` (path or dict); default: read from shapes.
        token_order: graph-token order (the released code: ``motif_first``).
        dtype: LM dtype to write (default: as stored, bf16).
        overwrite: replace an existing ``out_dir``.
        shared_level_attention: one shared level MHA (the released code) or one per level.
        num_attention_heads: LM heads when inferring from shapes (default ``hidden // 128``).
    """
    from llamo_plugin.checkpoint.format import save_model

    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise CheckpointError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    sd, metadata = extract_state_dict(read_checkpoint(ckpt_path, trust_pickle=trust_pickle))
    logger.info("%s: %d tensors; other entries %s", ckpt_path, len(sd), list(metadata))
    graph_sd, lm_sd, report = convert_state_dict(
        sd, lora_alpha=lora_alpha, shared_level_attention=shared_level_attention, dtype=dtype
    )
    del sd
    config = infer_llamo_config(
        graph_sd, token_order=token_order, shared_level_attention=shared_level_attention
    )
    prepare_tokenizer(tokenizer, lm_sd["model.embed_tokens.weight"].shape[0])
    lm_config = infer_lm_config(
        lm_sd,
        base_config=base_config,
        num_attention_heads=num_attention_heads,
        special_ids=(tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id),
    )
    model = build_converted_model(config, lm_config, tokenizer, graph_sd, lm_sd)
    del graph_sd, lm_sd
    manifest = save_model(model, out, overwrite=overwrite)
    report = dataclasses.replace(
        report,
        lm_config=lm_config_summary(lm_config),
        token_order=token_order,
        metadata_keys=metadata,
        model_sha256=manifest["model_sha256"],
    )
    for line in report.lines():
        logger.info("%s", line)
    return report
