"""Instruction records (LLaMo's training format) and their JSONL files.

A record is one conversation turn: a molecule (SMILES, from which the graph and the prompt
SMILES are derived), an instruction and the expected answer. The prompt the model sees is
``<SMILES><graph> <instruction>`` (see :func:`llamo_plugin.prompt.templates.molecule_user_text`);
the record keeps the canonical *isomeric* SMILES so that the graph keeps its stereo features,
and :meth:`InstructionRecord.user_text` cuts the prompt SMILES as LLaMo does.

One JSON object per line, keys in field order, UTF-8::

    {"task": "property", "smiles": "CC(=O)O", "instruction": "...", "answer": "-0.2482",
     "source": "qm9", "split": "train", "qtype": "homo"}
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

#: The splits a record can belong to. ``test`` records are for evaluation only.
SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class InstructionRecord:
    """One instruction-following example.

    Attributes:
        task: ``description``, ``property``, ``iupac`` or ``qa`` (:class:`llamo_plugin.tasks.Task`
            values); the structure-grounded facts corpus uses ``description``.
        smiles: RDKit canonical isomeric SMILES of the molecule.
        instruction: the user's question (without SMILES or ``<graph>``).
        answer: the expected answer text.
        source: where the molecule (and answer) comes from, e.g. ``qm9``,
            ``chebi20-validation``, ``rdkit-facts/qm9``.
        split: ``train``, ``val`` (model selection) or ``test`` (evaluation only).
        qtype: finer type: the QM9 target for ``property``, the question type for ``qa``,
            ``None`` otherwise.
    """

    task: str
    smiles: str
    instruction: str
    answer: str
    source: str
    split: str
    qtype: str | None = None

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        for name in ("task", "smiles", "instruction", "answer", "source"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping in field order (what a JSONL line holds)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstructionRecord:
        """Build from a mapping; unknown or missing keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown record key(s) {unknown}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(f"bad record {data!r}: {exc}") from exc

    def user_text(self, *, max_smiles_chars: int = 128, placeholder: str = "<graph>") -> str:
        """The first user message as LLaMo builds it: prompt SMILES + ``<graph>`` + instruction.

        The prompt SMILES is the canonical non-isomeric SMILES cut to ``max_smiles_chars``.
        """
        from llamo_plugin.chem.smiles import parse_smiles, prompt_smiles
        from llamo_plugin.prompt.templates import molecule_user_text

        smiles_text = prompt_smiles(parse_smiles(self.smiles), max_smiles_chars)
        return molecule_user_text(smiles_text, self.instruction, placeholder)


@dataclass
class BuildStats:
    """What one builder did: records per split, skipped molecules by reason, files, timing."""

    task: str
    records: Counter[str] = field(default_factory=Counter)
    molecules: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    files: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (for the manifest and logs)."""
        return {
            "task": self.task,
            "records": dict(sorted(self.records.items())),
            "molecules": dict(sorted(self.molecules.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "files": dict(sorted(self.files.items())),
            "wall_s": round(self.wall_s, 2),
            "extra": self.extra,
        }


def write_jsonl(path: str | Path, records: Iterable[InstructionRecord]) -> int:
    """Write ``records`` to ``path`` (one JSON object per line), atomically; return the count.

    The file is written to ``<path>.tmp`` and renamed, so a crashed build never leaves a
    truncated file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8", newline="\n") as fh:
        for record in records:
            fh.write(json.dumps(record.to_dict(), ensure_ascii=False))
            fh.write("\n")
            n += 1
    tmp.replace(path)
    return n


def iter_jsonl(path: str | Path) -> Iterator[InstructionRecord]:
    """Yield the records of a JSONL file (blank lines are skipped)."""
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield InstructionRecord.from_dict(json.loads(line))
            except (ValueError, json.JSONDecodeError) as exc:
                raise ValueError(f"{path}:{lineno}: {exc}") from exc


def read_jsonl(path: str | Path) -> list[InstructionRecord]:
    """All records of a JSONL file."""
    return list(iter_jsonl(path))
