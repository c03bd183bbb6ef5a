"""Typed training configuration (``llamo train --config configs/<name>.json``).

LLaMo trains in two stages (reference §8): stage 1 aligns graph and language on descriptions
(GNN + projector trained, LLM frozen except its embeddings), stage 2 instruction-tunes on the
task mix (projector + LoRA, GNN frozen). Our embedded model's LM is trained from scratch, so
each stage lists which parts are trainable and which data it mixes (see docs/training.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from llamo_plugin.config import FrozenConfig, LlamoConfig
from llamo_plugin.errors import ConfigError
from llamo_plugin.train.graph_pretrain import GraphPretrainConfig

Part = Literal["graph", "projector", "lm"]


@dataclass(frozen=True)
class DataSource(FrozenConfig):
    """One JSONL file of instruction records and its sampling weight in a stage's mix.

    ``weight`` is relative; ``max_records`` caps how many records of the file are used; only
    records whose ``split`` field equals ``split`` are read (held-out slices stay held out).
    """

    path: str
    weight: float = 1.0
    max_records: int = 0
    split: str = "train"

    def __post_init__(self) -> None:
        if self.weight <= 0:
            raise ConfigError(f"data source {self.path}: weight must be > 0")


@dataclass(frozen=True)
class StageConfig(FrozenConfig):
    """One training stage."""

    name: str
    data: tuple[DataSource, ...]
    trainable: tuple[str, ...] = ("graph", "projector", "lm")
    max_minutes: float = 10.0
    max_steps: int = 0
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.05
    tokens_per_batch: int = 4096
    max_batch_size: int = 64
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        bad = set(self.trainable) - {"graph", "projector", "lm"}
        if bad:
            raise ConfigError(f"stage {self.name}: unknown trainable parts {sorted(bad)}")
        if not self.data:
            raise ConfigError(f"stage {self.name}: needs at least one data source")
        if self.max_minutes <= 0 and self.max_steps <= 0:
            raise ConfigError(f"stage {self.name}: set max_minutes or max_steps")


@dataclass(frozen=True)
class TokenizerConfig(FrozenConfig):
    """Our BPE tokenizer, trained on the stage data before training starts."""

    vocab_size: int = 4000
    max_training_texts: int = 200_000
    #: one token per digit (numbers and SMILES ring closures read digit by digit)
    split_digits: bool = False


@dataclass(frozen=True)
class TrainConfig(FrozenConfig):
    """A full, seeded training recipe."""

    name: str
    seed: int = 0
    model: LlamoConfig = field(default_factory=LlamoConfig)
    lm: dict[str, Any] = field(default_factory=dict)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    stages: tuple[StageConfig, ...] = ()
    #: optional stage 0: supervised GIN pretraining before the language stages
    graph_pretrain: GraphPretrainConfig | None = None
    checkpoint_every_minutes: float = 5.0
    bf16_autocast: bool = False  # 6x slower than fp32 on CPUs without AVX512-BF16 (measured)
    num_threads: int = 0
    log_every_steps: int = 20

    def __post_init__(self) -> None:
        if not self.stages:
            raise ConfigError("a training config needs at least one stage")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"stage names must be unique: {names}")
        if "hidden_size" not in self.lm:
            raise ConfigError("lm config needs hidden_size (and the other Llama sizes)")
