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
from llamo_plugin.train.device import check_device_name, check_precision
from llamo_plugin.train.graph_pretrain import GraphPretrainConfig

Part = Literal["graph", "projector", "lm"]
PARTS = ("graph", "projector", "lm")


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
class DecodedEvalConfig(FrozenConfig):
    """Decoded validation during a stage (property answers, descriptions or both).

    Every ``every_minutes`` of training, the model greedily decodes (format-constrained, as
    at inference) the answers of the first ``molecules`` molecules of each file in ``files``
    (their ``val`` records; per target) and scores them: per target MAE with unparseable
    answers scored as the mean predictor, divided by the mean predictor's MAE on the same
    rows; the selection score is the mean of these ratios (lower is better; 1.0 = no better
    than the mean). The best-scoring weights are kept (``checkpoints/best.pt``) and become
    the stage's result; the stage stops after ``patience`` evaluations without improvement
    (0: it runs its whole budget). Teacher-forced val losses of ``loss_files`` (at most
    ``loss_records`` each) are logged beside, to watch the rehearsed tasks. With
    ``description_files``, descriptions are decoded too and scored ``1 - BLEU-4``; the
    selection score is then the mean of the two (or that alone without ``files``). With
    ``qa_files``, ``qa_rows`` evenly spaced Q&A val records are answered and scored
    ``1 - exact-match accuracy``, a further part of the mean.
    """

    files: tuple[str, ...] = ("property_val.jsonl",)
    molecules: int = 200
    every_minutes: float = 5.0
    patience: int = 0
    batch_size: int = 64
    loss_files: tuple[str, ...] = ()
    loss_records: int = 64
    #: descriptions decoded and scored by BLEU-4 (the first ``description_rows`` val records)
    description_files: tuple[str, ...] = ()
    description_rows: int = 100
    #: Q&A answered and scored by exact match (``qa_rows`` evenly spaced val records)
    qa_files: tuple[str, ...] = ()
    qa_rows: int = 200

    def __post_init__(self) -> None:
        if self.every_minutes <= 0 or self.molecules < 1:
            raise ConfigError("decoded_eval: every_minutes and molecules must be positive")
        if not self.files and not self.description_files and not self.qa_files:
            raise ConfigError("decoded_eval: give property, description or Q&A files")
        if self.description_rows < 1 or self.qa_rows < 1:
            raise ConfigError("decoded_eval: description_rows and qa_rows must be positive")


@dataclass(frozen=True)
class StageConfig(FrozenConfig):
    """One training stage.

    ``lr_multipliers`` scales the learning rate of a part (``{"graph": 0.1}``: the GIN keeps
    learning, slowly, instead of being frozen). ``aux_property_weight`` adds a regression
    loss on the graph tokens: a throw-away linear head on their mean predicts each property
    example's standardised value (so the projector exposes the value to the LM directly).
    ``decoded_eval`` selects the stage's weights by decoded property answers.
    """

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
    lr_multipliers: dict[str, float] = field(default_factory=dict)
    aux_property_weight: float = 0.0
    decoded_eval: DecodedEvalConfig | None = None

    def __post_init__(self) -> None:
        bad = set(self.trainable) - set(PARTS)
        if bad:
            raise ConfigError(f"stage {self.name}: unknown trainable parts {sorted(bad)}")
        bad = set(self.lr_multipliers) - set(self.trainable)
        if bad:
            raise ConfigError(
                f"stage {self.name}: lr_multipliers for parts that are not trainable {sorted(bad)}"
            )
        if any(not isinstance(v, int | float) or v <= 0 for v in self.lr_multipliers.values()):
            raise ConfigError(f"stage {self.name}: lr_multipliers must be positive numbers")
        if self.aux_property_weight < 0:
            raise ConfigError(f"stage {self.name}: aux_property_weight must be >= 0")
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
    #: ``auto`` (CUDA when visible, else CPU), ``cpu``, ``cuda`` or ``cuda:N``
    device: str = "auto"
    #: ``auto`` (bf16 autocast on CUDA, fp32 on CPU), ``fp32`` or ``bf16``
    precision: str = "auto"
    num_threads: int = 0
    log_every_steps: int = 20
    #: start from this model directory (its tokenizer, LM and graph weights; ``lm`` and
    #: ``tokenizer`` are then unused); relative paths are relative to the repository root
    init_from: str = ""
    #: run the prompt start shared by a batch through the LM once (same loss, fewer FLOPs)
    share_prompt_prefix: bool = True

    def __post_init__(self) -> None:
        if not self.stages:
            raise ConfigError("a training config needs at least one stage")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"stage names must be unique: {names}")
        check_device_name(self.device)
        check_precision(self.precision)
        if not self.init_from and "hidden_size" not in self.lm:
            raise ConfigError("lm config needs hidden_size (and the other Llama sizes)")
