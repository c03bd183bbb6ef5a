"""The product's tasks: instructions (several phrasings each), answer formats, decode caps.

Training builders sample among the phrasings so users are not bound to one wording; inference
uses the first phrasing of each task unless the user gives an instruction. Phrasings follow the
Mol-Instructions / LLaMo style (reference §10).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Task(str, Enum):
    """What a node or CLI column asks the model."""

    DESCRIPTION = "description"
    PROPERTY = "property"
    IUPAC = "iupac"
    QA = "qa"


class Property(str, Enum):
    """QM9 targets, answered in Hartree as a bare number with 4 decimals."""

    HOMO = "homo"
    LUMO = "lumo"
    GAP = "gap"


@dataclass(frozen=True)
class TaskSpec:
    """Instructions, decoding cap and (optional) answer format of one task.

    ``answer_format`` is a regular expression every answer must match; decoding is
    constrained to it (:mod:`llamo_plugin.model.answer_format`), so answers are well-formed
    by construction.
    """

    instructions: tuple[str, ...]
    max_new_tokens: int
    answer_format: str = ""

    @property
    def default_instruction(self) -> str:
        return self.instructions[0]


DESCRIPTION = TaskSpec(
    instructions=(
        "Could you give me a brief overview of this molecule?",
        "Could you provide a description of this molecule?",
        "Please give me some details about this molecule.",
        "Describe this molecule.",
        "What can you tell me about this molecule?",
        "Provide a brief overview of this molecule.",
        "Give a short description of the molecule.",
        "Please describe the structure and role of this molecule.",
    ),
    max_new_tokens=256,
)

IUPAC = TaskSpec(
    instructions=(
        "What is the IUPAC name of this molecule?",
        "Please provide the IUPAC name of this molecule.",
        "Give the systematic IUPAC name for this compound.",
        "Name this molecule according to IUPAC nomenclature.",
        "What is the systematic name of this molecule?",
    ),
    max_new_tokens=128,
)

#: Property answers: Hartree, 4 decimals, |value| < 1 (every QM9 HOMO/LUMO/gap is).
PROPERTY_ANSWER_FORMAT = r"-?0\.\d{4}"

PROPERTIES: dict[Property, TaskSpec] = {
    Property.HOMO: TaskSpec(
        instructions=(
            "Please provide the HOMO energy value for this molecule.",
            "What is the HOMO energy of this molecule in Hartree?",
            "Predict the highest occupied molecular orbital (HOMO) energy of this molecule.",
            "I would like to know the HOMO energy of this molecule.",
        ),
        max_new_tokens=12,
        answer_format=PROPERTY_ANSWER_FORMAT,
    ),
    Property.LUMO: TaskSpec(
        instructions=(
            "Please provide the LUMO energy value for this molecule.",
            "What is the LUMO energy of this molecule in Hartree?",
            "Predict the lowest unoccupied molecular orbital (LUMO) energy of this molecule.",
            "I would like to know the LUMO energy of this molecule.",
        ),
        max_new_tokens=12,
        answer_format=PROPERTY_ANSWER_FORMAT,
    ),
    Property.GAP: TaskSpec(
        instructions=(
            "Please provide the HOMO-LUMO gap of this molecule.",
            "What is the HOMO-LUMO energy gap of this molecule in Hartree?",
            "Predict the energy difference between the HOMO and LUMO of this molecule.",
            "I would like to know the HOMO-LUMO gap of this molecule.",
        ),
        max_new_tokens=12,
        answer_format=PROPERTY_ANSWER_FORMAT,
    ),
}

#: Free-form questions: a cap generous enough for short factual answers.
QA_MAX_NEW_TOKENS = 64


def format_property_value(value_hartree: float) -> str:
    """Mol-Instructions style answer: a bare number with 4 decimals (``-0.2482``)."""
    text = f"{value_hartree:.4f}"
    return "0.0000" if text == "-0.0000" else text
