"""The product's tasks: instructions (several phrasings each), answer formats, decode caps,
and the columns each task appends (key, type, KNIME label).

Training builders sample among the phrasings so users are not bound to one wording; inference
uses the first phrasing of each task unless the user gives an instruction. Phrasings follow the
Mol-Instructions / LLaMo style (reference §10). ``llamo annotate`` names its columns by
``OutputColumn.key``; the KNIME nodes by ``OutputColumn.label`` (both read the declarations
below, so a new column is one edit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from llamo_plugin.config import DecodeConfig


class Task(str, Enum):
    """What a node or CLI column asks the model."""

    DESCRIPTION = "description"
    PROPERTY = "property"
    IUPAC = "iupac"
    QA = "qa"
    FORWARD = "forward"  # reaction: reactants (and reagents) -> product
    RETRO = "retro"  # retrosynthesis: product -> reactants


#: What LLaMo's official checkpoint was instruction-tuned on (reference §5.1, §10).
OFFICIAL_TASKS = tuple(t.value for t in Task)


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
    #: how each token of a formatted answer is chosen (``DecodeConfig.answer_choice``)
    answer_choice: str = "argmax"

    @property
    def default_instruction(self) -> str:
        return self.instructions[0]

    def decode_config(self) -> DecodeConfig:
        """The decoding of this task's answers: its token cap, answer format and choice."""
        from llamo_plugin.config import DecodeConfig

        return DecodeConfig(
            max_new_tokens=self.max_new_tokens,
            answer_format=self.answer_format,
            answer_choice=self.answer_choice if self.answer_format else "argmax",
        )


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

#: LLaMo's reaction tasks (Mol-Instructions, USPTO; reference §10). The reaction side is one
#: SMILES (molecules joined by ``.``) and so one disconnected graph; the answer is SMILES.
FORWARD = TaskSpec(
    instructions=(
        "With the provided reactants and reagents, propose a potential product:",
        "Given the reactants and reagents below, what is the expected product?",
        "Predict the product of the reaction with these reactants and reagents.",
    ),
    max_new_tokens=128,
)
RETRO = TaskSpec(
    instructions=(
        "Please suggest potential reactants used in the synthesis of the provided product:",
        "Which reactants could be used to synthesise this product?",
        "Propose a retrosynthesis of this product: give the reactants.",
    ),
    max_new_tokens=128,
)

#: The gap of drug-like molecules at PubChem's DFT level (eV, 2 decimals): another level of
#: theory than QM9's, so asked with its own instructions (``pubchem-gap-iqspr``).
PUBCHEM_GAP = TaskSpec(
    instructions=(
        "What is the HOMO-LUMO gap of this molecule in eV (PubChem DFT)?",
        "Please provide the PubChem DFT HOMO-LUMO gap of this molecule in eV.",
        "Predict the HOMO-LUMO gap in eV of this molecule at the PubChem DFT level.",
        "I would like to know the DFT HOMO-LUMO gap (PubChem, eV) of this molecule.",
    ),
    max_new_tokens=8,
    answer_format=r"\d{1,2}\.\d{2}",
)

#: Free-form questions: a cap generous enough for short factual answers.
QA_MAX_NEW_TOKENS = 64


_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def parse_number(text: str | None) -> float | None:
    """A property answer's value: the first number in ``text`` (``None`` if there is none)."""
    if not text:
        return None
    match = _NUMBER.search(text)
    return float(match.group(0)) if match else None


def format_property_value(value_hartree: float) -> str:
    """Mol-Instructions style answer: a bare number with 4 decimals (``-0.2482``)."""
    text = f"{value_hartree:.4f}"
    return "0.0000" if text == "-0.0000" else text


@dataclass(frozen=True)
class OutputColumn:
    """One appended column: ``key`` (its name in ``llamo annotate``'s output and in
    :class:`~llamo_plugin.annotate.Annotator`'s result), ``kind`` and the KNIME ``label``."""

    key: str
    kind: Literal["str", "float"]
    label: str


DESCRIPTION_COLUMNS = (OutputColumn("description", "str", "Description"),)
#: the reference molecules a retrieval-augmented description was given (id and similarity)
RETRIEVAL_COLUMNS = (OutputColumn("description_neighbours", "str", "Description neighbours"),)
#: the most similar reference molecule (``--nearest-neighbour``)
NEAREST_COLUMNS = (
    OutputColumn("nn_smiles", "str", "Nearest reference SMILES"),
    OutputColumn("nn_similarity", "float", "Nearest reference similarity"),
    OutputColumn("nn_caption", "str", "Nearest reference caption"),
)
PROPERTY_LABELS = {Property.HOMO: "HOMO", Property.LUMO: "LUMO", Property.GAP: "HOMO-LUMO gap"}
IUPAC_COLUMNS = (
    OutputColumn("iupac_name", "str", "IUPAC name"),
    OutputColumn("iupac_roundtrip", "str", "IUPAC name round trip"),
    OutputColumn("iupac_source", "str", "IUPAC name source"),
)
QA_COLUMNS = (OutputColumn("answer", "str", "Answer"),)
#: the model's SMILES answer, RDKit-canonical (missing when it is no valid SMILES)
FORWARD_COLUMNS = (OutputColumn("forward_product", "str", "Predicted product"),)
RETRO_COLUMNS = (OutputColumn("retro_reactants", "str", "Predicted reactants"),)
#: appended by every task, last: the applicability domain and why outputs are missing
STATUS_COLUMNS = (
    OutputColumn("llamo_domain", "str", "LLaMo domain"),
    OutputColumn("llamo_error", "str", "LLaMo error"),
)


def property_columns(name: str, *, add_ev: bool) -> tuple[OutputColumn, ...]:
    """``<name>_hartree`` (and ``<name>_ev``) for one property."""
    label = PROPERTY_LABELS[Property(name)]
    cols = [OutputColumn(f"{name}_hartree", "float", f"{label} (Hartree)")]
    if add_ev:
        cols.append(OutputColumn(f"{name}_ev", "float", f"{label} (eV)"))
    return tuple(cols)
