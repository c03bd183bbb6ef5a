"""Training data: weighted mixing of JSONL sources and length-bucketed token-budget batches."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamo_plugin.train.config import StageConfig


@dataclass(frozen=True)
class Example:
    """A training example (one record of a JSONL file)."""

    smiles: str
    instruction: Any
    answer: str
    task: str
    #: finer type (the property target: ``homo``, ``lumo``, ``gap``, ``gap_pubchem_ev``)
    qtype: str | None = None


def load_examples(path: Path, max_records: int = 0, split: str = "train") -> list[Example]:
    """Read ``InstructionRecord`` JSONL lines (fields smiles, instruction, answer, task, split)
    whose split is ``split``."""
    out: list[Example] = []
    with open(path) as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = json.loads(line)
            if rec.get("split", "train") != split:
                continue
            out.append(
                Example(
                    rec["smiles"], rec["instruction"], rec["answer"], rec["task"], rec.get("qtype")
                )
            )
            if max_records and len(out) >= max_records:
                break
    return out


class MixtureSampler:
    """Draws examples from several sources with probabilities proportional to their weights,
    each source reshuffled (seeded) every time it is exhausted."""

    def __init__(self, sources: list[tuple[list[Example], float]], seed: int) -> None:
        self.sources = [s for s, _ in sources]
        total = sum(w for _, w in sources)
        self.weights = [w / total for _, w in sources]
        self.rng = random.Random(seed)
        self.orders = [self._shuffled(i) for i in range(len(self.sources))]
        self.positions = [0] * len(self.sources)

    def _shuffled(self, i: int) -> list[int]:
        order = list(range(len(self.sources[i])))
        self.rng.shuffle(order)
        return order

    def draw(self) -> Example:
        i = self.rng.choices(range(len(self.sources)), weights=self.weights)[0]
        if self.positions[i] >= len(self.orders[i]):
            self.orders[i] = self._shuffled(i)
            self.positions[i] = 0
        example = self.sources[i][self.orders[i][self.positions[i]]]
        self.positions[i] += 1
        return example

    def state(self) -> dict[str, Any]:
        return {"rng": self.rng.getstate(), "orders": self.orders, "positions": self.positions}

    def load_state(self, state: dict[str, Any]) -> None:
        rng_state = state["rng"]
        self.rng.setstate((rng_state[0], tuple(rng_state[1]), rng_state[2]))
        self.orders = [list(o) for o in state["orders"]]
        self.positions = list(state["positions"])


def plan_batches(lengths: list[int], stage: StageConfig, rng: random.Random) -> list[list[int]]:
    """Cut a pool into batches of similar-length examples whose padded size fits the token
    budget (and ``max_batch_size``); returns the batches (indices into the pool) in random
    order. A plan of plain indices can be saved in a checkpoint and resumed mid-pool."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = max([lengths[j] for j in current] + [lengths[i]])
        if current and (
            longest * (len(current) + 1) > stage.tokens_per_batch
            or len(current) >= stage.max_batch_size
        ):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches
