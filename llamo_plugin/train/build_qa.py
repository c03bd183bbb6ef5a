"""Molecule Q&A: questions whose answers RDKit computes exactly.

Question types (``qtype``), each with several phrasings, and their canonical answers:

==================  ===================================================  ===================
qtype               answer                                               example (aspirin)
==================  ===================================================  ===================
formula             Hill formula, charge appended (``C2H3O2-``)          ``C9H8O4``
heavy_atoms         number of non-hydrogen atoms                         ``13``
rings               number of rings (smallest set of smallest rings)     ``1``
aromatic_rings      number of aromatic rings (RDKit)                     ``1``
hbd                 H-bond donors, RDKit ``Lipinski.NumHDonors``         ``1``
hba                 H-bond acceptors, RDKit ``Lipinski.NumHAcceptors``   ``3``
charge              net formal charge as an integer                      ``0``
functional_groups   groups of :mod:`~llamo_plugin.train.groups`, table   ``carboxylic acid,
                    order, comma-separated, ``none`` when empty          ester``
has_group           ``yes`` / ``no`` for one group of the table          ``yes``
element_count       number of atoms of one element                       ``9`` (carbon)
molecular_weight    average molecular weight in g/mol, 2 decimals        ``180.16``
==================  ===================================================  ===================

Only single-fragment molecules are asked about (a salt's formula or ring count is ambiguous).
Training records: ``questions_per_molecule`` distinct question types per molecule. The QA test
file (``resources/splits/qa_test.jsonl``, 300 held-out molecules x 4 questions) cycles through
all question types so each is asked about equally often.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamo_plugin.tasks import Task
from llamo_plugin.train.context import BuildContext, make_context, pick
from llamo_plugin.train.groups import FUNCTIONAL_GROUPS, groups_present, has_match
from llamo_plugin.train.records import BuildStats, InstructionRecord, read_jsonl, write_jsonl
from llamo_plugin.train.splits import FIXED_SPLIT_SEED, QA_TEST_FILE, PoolMolecule

logger = logging.getLogger(__name__)

QUESTIONS_PER_TEST_MOLECULE = 4

#: element symbol -> name used in questions (element_count).
ELEMENTS: dict[str, str] = {
    "C": "carbon",
    "N": "nitrogen",
    "O": "oxygen",
    "F": "fluorine",
    "S": "sulfur",
    "Cl": "chlorine",
    "Br": "bromine",
    "P": "phosphorus",
}


@dataclass(frozen=True)
class Question:
    """One question type: phrasings (maybe with a ``{topic}`` slot) and how to answer."""

    qtype: str
    phrasings: tuple[str, ...]


QUESTIONS: tuple[Question, ...] = (
    Question(
        "formula",
        (
            "What is the molecular formula of this molecule?",
            "Give the molecular formula of this compound.",
            "Which molecular formula does this molecule have?",
            "Please provide the molecular formula of this molecule.",
        ),
    ),
    Question(
        "heavy_atoms",
        (
            "How many heavy atoms does this molecule have?",
            "How many non-hydrogen atoms are in this molecule?",
            "Count the heavy (non-hydrogen) atoms of this molecule.",
            "What is the number of heavy atoms in this molecule?",
        ),
    ),
    Question(
        "rings",
        (
            "How many rings does this molecule contain?",
            "What is the number of rings in this molecule?",
            "Count the rings in this molecule.",
            "How many rings are there in the structure of this compound?",
        ),
    ),
    Question(
        "aromatic_rings",
        (
            "How many aromatic rings does this molecule contain?",
            "What is the number of aromatic rings in this molecule?",
            "Count the aromatic rings of this compound.",
            "How many aromatic rings are present in this molecule?",
        ),
    ),
    Question(
        "hbd",
        (
            "How many hydrogen bond donors does this molecule have?",
            "What is the number of hydrogen bond donors in this molecule?",
            "Count the hydrogen bond donors of this compound.",
            "How many H-bond donors does this molecule have?",
        ),
    ),
    Question(
        "hba",
        (
            "How many hydrogen bond acceptors does this molecule have?",
            "What is the number of hydrogen bond acceptors in this molecule?",
            "Count the hydrogen bond acceptors of this compound.",
            "How many H-bond acceptors does this molecule have?",
        ),
    ),
    Question(
        "charge",
        (
            "What is the net charge of this molecule?",
            "What is the total formal charge of this molecule?",
            "Which overall charge does this molecule carry?",
            "Give the net formal charge of this compound.",
        ),
    ),
    Question(
        "functional_groups",
        (
            "Which functional groups does this molecule contain?",
            "List the functional groups present in this molecule.",
            "What functional groups are present in this compound?",
            "Name the functional groups of this molecule.",
        ),
    ),
    Question(
        "has_group",
        (
            "Does this molecule contain {topic}?",
            "Is there {topic} in this molecule?",
            "Answer yes or no: does this compound have {topic}?",
            "Does the structure of this molecule include {topic}?",
        ),
    ),
    Question(
        "element_count",
        (
            "How many {topic} atoms does this molecule contain?",
            "What is the number of {topic} atoms in this molecule?",
            "Count the {topic} atoms in this compound.",
            "How many {topic} atoms are there in this molecule?",
        ),
    ),
    Question(
        "molecular_weight",
        (
            "What is the molecular weight of this molecule in g/mol?",
            "Give the molecular weight of this compound (g/mol).",
            "What is the molar mass of this molecule in g/mol?",
            "Calculate the molecular weight of this molecule in g/mol.",
        ),
    ),
)
QUESTIONS_BY_TYPE: dict[str, Question] = {q.qtype: q for q in QUESTIONS}


# --------------------------------------------------------------------------- answers


def _rdkit() -> Any:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    return Chem


def answer_formula(mol: Any) -> str:
    from rdkit.Chem import rdMolDescriptors

    return str(rdMolDescriptors.CalcMolFormula(mol))


def answer_rings(mol: Any) -> str:
    """Size of the smallest set of smallest rings (the cyclomatic number)."""
    return str(len(_rdkit().GetSSSR(mol)))


def answer_aromatic_rings(mol: Any) -> str:
    from rdkit.Chem import rdMolDescriptors

    return str(rdMolDescriptors.CalcNumAromaticRings(mol))


def answer_hbd(mol: Any) -> str:
    from rdkit.Chem import Lipinski

    return str(Lipinski.NumHDonors(mol))


def answer_hba(mol: Any) -> str:
    from rdkit.Chem import Lipinski

    return str(Lipinski.NumHAcceptors(mol))


def answer_charge(mol: Any) -> str:
    return str(_rdkit().GetFormalCharge(mol))


def answer_functional_groups(mol: Any) -> str:
    found = groups_present(mol)
    return ", ".join(found) if found else "none"


def answer_molecular_weight(mol: Any) -> str:
    from rdkit.Chem import Descriptors

    return f"{Descriptors.MolWt(mol):.2f}"


def element_count(mol: Any, symbol: str) -> int:
    """Atoms of ``symbol`` (hydrogens counted from implicit + explicit H for ``H``)."""
    if symbol == "H":
        return sum(a.GetTotalNumHs() for a in mol.GetAtoms())
    return sum(1 for a in mol.GetAtoms() if a.GetSymbol() == symbol)


_SIMPLE: dict[str, Callable[[Any], str]] = {
    "formula": answer_formula,
    "heavy_atoms": lambda mol: str(mol.GetNumHeavyAtoms()),
    "rings": answer_rings,
    "aromatic_rings": answer_aromatic_rings,
    "hbd": answer_hbd,
    "hba": answer_hba,
    "charge": answer_charge,
    "functional_groups": answer_functional_groups,
    "molecular_weight": answer_molecular_weight,
}


def ask(mol: Any, qtype: str, rng: random.Random) -> tuple[str, str]:
    """An ``(instruction, answer)`` pair of ``qtype`` about ``mol``; topics drawn with ``rng``."""
    question = QUESTIONS_BY_TYPE[qtype]
    phrasing = pick(rng, question.phrasings)
    if qtype in _SIMPLE:
        return phrasing, _SIMPLE[qtype](mol)
    if qtype == "has_group":
        present = set(groups_present(mol))
        absent = [g for g in FUNCTIONAL_GROUPS if g.name not in present]
        chosen = [g for g in FUNCTIONAL_GROUPS if g.name in present]
        # half positive, half negative questions (when both kinds exist)
        pool = chosen if chosen and (not absent or rng.random() < 0.5) else absent
        group = pool[rng.randrange(len(pool))]
        answer = "yes" if has_match(mol, group.smarts) else "no"
        return phrasing.format(topic=group.noun), answer
    if qtype == "element_count":
        present = [s for s in ELEMENTS if element_count(mol, s)]
        absent = [s for s in ELEMENTS if s not in present]
        pool = present if present and (not absent or rng.random() < 0.75) else absent
        symbol = pool[rng.randrange(len(pool))]
        return phrasing.format(topic=ELEMENTS[symbol]), str(element_count(mol, symbol))
    raise ValueError(f"unknown question type {qtype!r}")


def qa_records(
    mol: Any,
    molecule: PoolMolecule,
    qtypes: Iterable[str],
    rng: random.Random,
    split: str,
) -> list[InstructionRecord]:
    """Records of the given question types about one molecule."""
    out = []
    for qtype in qtypes:
        instruction, answer = ask(mol, qtype, rng)
        out.append(
            InstructionRecord(
                task=Task.QA.value,
                smiles=molecule.smiles,
                instruction=instruction,
                answer=answer,
                source=molecule.source,
                split=split,
                qtype=qtype,
            )
        )
    return out


def _mol(smiles: str) -> Any | None:
    """The molecule of ``smiles`` if it is a single fragment, else ``None``."""
    mol = _rdkit().MolFromSmiles(smiles)
    if mol is None or len(_rdkit().GetMolFrags(mol)) != 1:
        return None
    return mol


# --------------------------------------------------------------------------- QA test file


def make_test_records(molecules: Sequence[PoolMolecule]) -> list[InstructionRecord]:
    """The QA test records: 4 question types per molecule, cycling through all types."""
    rng = random.Random(f"qa-test:{FIXED_SPLIT_SEED}")
    qtypes = [q.qtype for q in QUESTIONS]
    out: list[InstructionRecord] = []
    k = 0
    for molecule in molecules:
        mol = _mol(molecule.smiles)
        if mol is None:
            continue
        chosen = [qtypes[(k + j) % len(qtypes)] for j in range(QUESTIONS_PER_TEST_MOLECULE)]
        k += QUESTIONS_PER_TEST_MOLECULE
        out.extend(qa_records(mol, molecule, chosen, rng, "test"))
    return out


# --------------------------------------------------------------------------- build


def build(
    data_dir: Path | None = None,
    out_dir: Path = Path("data/build"),
    *,
    seed: int = 0,
    max_molecules: int | None = None,
    questions_per_molecule: int = 3,
    write_splits: bool = False,
    context: BuildContext | None = None,
) -> BuildStats:
    """Write ``qa_train.jsonl``, ``qa_val.jsonl`` and ``qa_test.jsonl`` to ``out_dir``.

    Args:
        max_molecules: at most this many training molecules per pool (QM9, ChEBI-20).
        questions_per_molecule: distinct question types asked per training/val molecule.
        write_splits: also (re)write the committed ``resources/splits/qa_test.jsonl``.
    """
    t0 = time.perf_counter()
    ctx = context or make_context(data_dir)
    stats = BuildStats(task=Task.QA.value)
    all_types = [q.qtype for q in QUESTIONS]
    out_dir = Path(out_dir)

    def records_for(molecules: Iterable[PoolMolecule], split: str) -> Iterable[InstructionRecord]:
        rng = random.Random(f"qa:{split}:{seed}")
        for molecule in molecules:
            mol = _mol(molecule.smiles)
            if mol is None:
                stats.skipped["multi-fragment"] += 1
                continue
            qtypes = rng.sample(all_types, min(questions_per_molecule, len(all_types)))
            recs = qa_records(mol, molecule, qtypes, rng, split)
            stats.molecules[split] += 1
            stats.records[split] += len(recs)
            yield from recs

    def training() -> Iterable[PoolMolecule]:
        return ctx.iter_qm9_and_chebi(
            seed=seed, salt="qa", skipped=stats.skipped, max_molecules=max_molecules
        )

    path = out_dir / "qa_train.jsonl"
    write_jsonl(path, records_for(training(), "train"))
    stats.files["train"] = str(path)
    path = out_dir / "qa_val.jsonl"
    write_jsonl(path, records_for(ctx.val_molecules(), "val"))
    stats.files["val"] = str(path)

    committed = ctx.splits_dir / QA_TEST_FILE
    if committed.is_file() and not write_splits:
        tests = read_jsonl(committed)  # the committed file is the source of truth
    else:
        tests = make_test_records(ctx.plan.qa_test)
        if write_splits:
            write_jsonl(committed, tests)
            logger.info("qa: wrote %s (%d records)", committed, len(tests))
        else:
            logger.warning("qa: %s is missing; the test file is only in %s", committed, out_dir)
    path = out_dir / "qa_test.jsonl"
    write_jsonl(path, tests)
    stats.files["test"] = str(path)
    stats.records["test"] = len(tests)
    stats.molecules["test"] = len({r.smiles for r in tests})
    stats.wall_s = time.perf_counter() - t0
    logger.info("qa: %s", stats.to_dict())
    return stats
