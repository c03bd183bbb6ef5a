"""Typed, frozen configuration records.

Every config is a frozen dataclass. ``from_dict`` rejects unknown keys and wrong types, so a
misspelt key (the original LLaMo silently ignored ``num_eos_token``) is an error, not a no-op.
Validation happens in ``__post_init__`` by raising :class:`~llamo_plugin.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args, get_origin

from llamo_plugin.errors import ConfigError

T = TypeVar("T", bound="FrozenConfig")

#: LLaMo's system message (reference §6).
LLAMO_SYSTEM_MESSAGE = "The following is a conversation between a curious human and AI assistant."


def _check_type(name: str, value: Any, annotation: Any) -> Any:
    """Check ``value`` against a (simple) type annotation; return the value, maybe coerced."""
    origin = get_origin(annotation)
    if annotation is Any:
        return value
    if origin is Literal:
        if value not in get_args(annotation):
            raise ConfigError(f"{name}: {value!r} is not one of {get_args(annotation)}")
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in get_args(annotation):
            if arg is type(None) and value is None:
                return None
            try:
                return _check_type(name, value, arg)
            except ConfigError:
                continue
        raise ConfigError(f"{name}: {value!r} does not match {annotation}")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a mapping, got {type(value).__name__}")
        return dict(value)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{name}: expected a list, got {type(value).__name__}")
        (item_type, *_rest) = get_args(annotation)
        return tuple(_check_type(f"{name}[]", v, item_type) for v in value)
    if isinstance(annotation, type) and issubclass(annotation, FrozenConfig):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a mapping, got {type(value).__name__}")
        return annotation.from_dict(value, _path=name)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, bool):
        raise ConfigError(f"{name}: expected int, got bool")
    if isinstance(annotation, type) and not isinstance(value, annotation):
        raise ConfigError(
            f"{name}: expected {annotation.__name__}, got {type(value).__name__} ({value!r})"
        )
    return value


@dataclass(frozen=True)
class FrozenConfig:
    """Base class: strict ``from_dict`` / ``to_dict`` round trip."""

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any], *, _path: str = "") -> T:
        """Build from a plain mapping; unknown keys and wrong types raise ``ConfigError``."""
        if not isinstance(data, dict):
            raise ConfigError(f"{_path or cls.__name__}: expected a mapping")
        hints = typing.get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - known)
        if unknown:
            where = _path or cls.__name__
            raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(known)}")
        kwargs = {
            k: _check_type(f"{_path + '.' if _path else ''}{k}", v, hints[k])
            for k, v in data.items()
        }
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able mapping (tuples become lists)."""

        def conv(v: Any) -> Any:
            if isinstance(v, FrozenConfig):
                return v.to_dict()
            if isinstance(v, tuple):
                return [conv(x) for x in v]
            return v

        return {f.name: conv(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self: T, **changes: Any) -> T:
        """A copy with some fields changed (validated again)."""
        return self.from_dict({**self.to_dict(), **changes})


#: OGB atom vocabulary sizes, columns 0..8 (reference §2).
OGB_ATOM_VOCAB: tuple[int, ...] = (119, 5, 12, 12, 10, 6, 6, 2, 2)
#: OGB bond vocabulary sizes, columns 0..2 (reference §2).
OGB_BOND_VOCAB: tuple[int, ...] = (5, 6, 2)


@dataclass(frozen=True)
class GraphEncoderConfig(FrozenConfig):
    """GIN encoder (reference §3): ``num_layers`` GIN layers of width ``hidden_size``."""

    num_layers: int = 5
    hidden_size: int = 300
    atom_vocab_sizes: tuple[int, ...] = OGB_ATOM_VOCAB
    bond_vocab_sizes: tuple[int, ...] = OGB_BOND_VOCAB
    batch_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.num_layers < 1 or self.hidden_size < 1:
            raise ConfigError("graph: num_layers and hidden_size must be positive")
        if len(self.atom_vocab_sizes) != 9 or len(self.bond_vocab_sizes) != 3:
            raise ConfigError("graph: OGB features have 9 atom and 3 bond columns")


@dataclass(frozen=True)
class ProjectorConfig(FrozenConfig):
    """Multi-level graph projector (reference §5).

    ``num_levels`` must equal the GIN's ``num_layers + 1`` (the atom-embedding level and every
    layer). The projector emits ``num_levels * queries_per_level + num_motif_queries`` tokens.
    """

    input_size: int = 300
    output_size: int = 4096
    num_levels: int = 6
    queries_per_level: int = 4
    num_motif_queries: int = 4
    motif_feature_size: int = 73
    num_heads: int = 4
    mlp_depth: int = 6
    shared_level_attention: bool = True
    token_order: Literal["motif_first", "motif_last"] = "motif_first"
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.input_size % self.num_heads:
            raise ConfigError("projector: input_size must be divisible by num_heads")
        if self.mlp_depth < 1:
            raise ConfigError("projector: mlp_depth must be >= 1")

    @property
    def num_graph_tokens(self) -> int:
        """Graph tokens per molecule (28 for LLaMo)."""
        return self.num_levels * self.queries_per_level + self.num_motif_queries


@dataclass(frozen=True)
class PromptConfig(FrozenConfig):
    """How a molecule and an instruction become the chat prompt (reference §6)."""

    template: Literal["llama2_chat"] = "llama2_chat"
    system_message: str = LLAMO_SYSTEM_MESSAGE
    graph_placeholder: str = "<graph>"
    max_smiles_chars: int = 128
    include_smiles: bool = True

    def __post_init__(self) -> None:
        if self.max_smiles_chars < 0:
            raise ConfigError("prompt: max_smiles_chars must be >= 0")


@dataclass(frozen=True)
class DecodeConfig(FrozenConfig):
    """Greedy decoding settings. LLaMo decodes greedily with ``max_new_tokens=512``."""

    max_new_tokens: int = 512
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0
    #: a regular expression the whole answer must match (constrained decoding, e.g. the
    #: property format ``-?0\.\d{4}``; :mod:`llamo_plugin.model.answer_format`); "" = free
    answer_format: str = ""
    #: with an answer_format: pick each token greedily ("argmax") or at the median of the
    #: model's distribution over the numbers the candidates lead to ("median", the choice
    #: that minimises expected absolute error; for numeric answers)
    answer_choice: Literal["argmax", "median"] = "argmax"
    #: copy-biased decoding (:mod:`llamo_plugin.backends.hf.copy_bias`): added to the logit of
    #: tokens that continue the longest match (>= ``copy_min_match`` tokens) of the answer so
    #: far with the prompt, e.g. a retrieved neighbour's caption; 0 = off
    copy_bias: float = 0.0
    copy_min_match: int = 2
    #: copied tokens are exempt from the repetition rules and each prompt position is copied
    #: at most once (captions repeat phrases the n-gram ban would otherwise cut mid-copy)
    copy_free: bool = False

    def __post_init__(self) -> None:
        if self.copy_bias < 0 or self.copy_min_match < 1:
            raise ConfigError("decode: copy_bias must be >= 0 and copy_min_match >= 1")
        if self.max_new_tokens < 1:
            raise ConfigError("decode: max_new_tokens must be >= 1")
        if self.answer_format:
            import re

            try:
                re.compile(self.answer_format)
            except re.error as exc:
                raise ConfigError(f"decode: answer_format is not a regex: {exc}") from exc
        if self.no_repeat_ngram_size < 0 or self.repetition_penalty <= 0:
            raise ConfigError("decode: invalid repetition settings")


@dataclass(frozen=True)
class RetrievalConfig(FrozenConfig):
    """Retrieval-augmented descriptions (:mod:`llamo_plugin.retrieval`): whether a model's
    description prompts carry the ``neighbours`` most similar annotated molecules by default
    (a model trained with them: the embedded model; the official checkpoint was not, so it
    defaults to off and users may switch it on), and the copy bias its decoding then adds
    (:attr:`DecodeConfig.copy_bias`)."""

    default: bool = False
    neighbours: int = 2
    copy_bias: float = 0.0
    #: :attr:`DecodeConfig.copy_free` of retrieval prompts
    copy_free: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.neighbours <= 8:
            raise ConfigError("retrieval: neighbours must be between 1 and 8")
        if self.copy_bias < 0:
            raise ConfigError("retrieval: copy_bias must be >= 0")

    def decode_for(self, decode: DecodeConfig) -> DecodeConfig:
        """``decode`` with this model's copy rule, for retrieval prompts."""
        return decode.replace(copy_bias=self.copy_bias, copy_free=self.copy_free)


@dataclass(frozen=True)
class DomainConfig(FrozenConfig):
    """The molecules a model was trained on, coarsely: answers for molecules outside are
    extrapolation and are flagged as such (the ``llamo_domain`` column,
    :mod:`llamo_plugin.chem.domain`).

    The defaults describe the embedded model's training molecules (ChEBI-20 validation and
    QM9): elements present in at least 5 of them, at most 574 heavy atoms (the largest),
    formal charges of -1..+1 on any atom (+2/+3 occur on 23 atoms in 3,301 molecules), no
    radicals, no wildcard atoms. A model directory may state its own.
    """

    elements: tuple[str, ...] = (
        "H", "B", "C", "N", "O", "F", "Na", "Si", "P", "S", "Cl", "Fe", "Co", "Se", "Br", "I",
    )  # fmt: skip
    max_heavy_atoms: int = 574
    max_abs_formal_charge: int = 1
    allow_radicals: bool = False


@dataclass(frozen=True)
class LlamoConfig(FrozenConfig):
    """Everything but the language model's own config (which lives in ``lm/config.json``)."""

    format_version: int = 1
    name: str = "llamo"
    graph: GraphEncoderConfig = field(default_factory=GraphEncoderConfig)
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    description: str = ""
    domain: DomainConfig = field(default_factory=DomainConfig)
    #: the tasks the model was trained for (:class:`llamo_plugin.tasks.Task` values); asked
    #: for another, the CLI and the nodes refuse instead of printing noise as an answer. The
    #: default is the embedded model's four; the official checkpoint's converter adds
    #: LLaMo's reaction tasks.
    tasks: tuple[str, ...] = ("description", "property", "iupac", "qa")
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)

    def __post_init__(self) -> None:
        if self.format_version != 1:
            raise ConfigError(f"unsupported format_version {self.format_version}")
        if self.projector.num_levels != self.graph.num_layers + 1:
            raise ConfigError(
                "projector.num_levels must be graph.num_layers + 1 "
                f"({self.projector.num_levels} != {self.graph.num_layers + 1})"
            )
        if self.projector.input_size != self.graph.hidden_size:
            raise ConfigError("projector.input_size must equal graph.hidden_size")
