"""Structure-only records of the ChEBI-20 *train* molecules (no captions are available).

The 26,341 structures of ``../shared/data/chebi-20-train-smiles`` are exactly the kind of
molecule users and the evaluation sets have (drug-like compounds and natural products, not
QM9's 9-atom molecules), so they carry the training signals that need no caption:

- ``chebi20train_qa_train.jsonl``: RDKit-exact Q&A (:mod:`~llamo_plugin.train.build_qa`),
  ``questions_per_molecule`` question types per single-fragment molecule;
- ``chebi20train_iupac_train.jsonl``: openclatura names kept only when OPSIN parses them back
  to the identical structure (:func:`~llamo_plugin.train.build_iupac.name_molecules`, the
  same cache as the IUPAC builder);
- ``chebi20train_facts_train.jsonl``: the RDKit-facts captions
  (:func:`~llamo_plugin.train.build_facts.describe`) with the verified name where one exists.

Training split only (model selection uses the existing val slices). Evaluation and held-out
molecules are excluded by InChIKey like every other pool (:meth:`BuildContext.iter_training`).
The molecules can also feed graph pretraining: list one of these files in the stage-0
``molecule_files``.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from llamo_plugin.tasks import IUPAC, Task
from llamo_plugin.train.context import BuildContext, make_context, pick
from llamo_plugin.train.records import BuildStats, InstructionRecord, write_jsonl
from llamo_plugin.train.sources import CHEBI_TRAIN, read_chebi_train_structures
from llamo_plugin.train.splits import PoolMolecule

logger = logging.getLogger(__name__)

TASK = "chebi20_train"
PREFIX = "chebi20train_"


def build(
    data_dir: Path | None = None,
    out_dir: Path = Path("data/build"),
    *,
    seed: int = 0,
    max_molecules: int | None = None,
    questions_per_molecule: int = 3,
    context: BuildContext | None = None,
) -> BuildStats:
    """Write the three ``chebi20train_*_train.jsonl`` files to ``out_dir``.

    Args:
        max_molecules: at most this many molecules (seeded subsample).
        questions_per_molecule: distinct Q&A question types per molecule.
    """
    from llamo_plugin.train import build_facts, build_iupac, build_qa

    t0 = time.perf_counter()
    ctx = context or make_context(data_dir)
    stats = BuildStats(task=TASK)
    out_dir = Path(out_dir)
    molecules = list(
        ctx.iter_training(
            read_chebi_train_structures(ctx.data_dir),
            source=CHEBI_TRAIN,
            seed=seed,
            salt=TASK,
            skipped=stats.skipped,
            max_molecules=max_molecules,
        )
    )
    stats.molecules["train"] = len(molecules)

    t_name = time.perf_counter()
    names, timing = build_iupac.name_molecules(
        [m.smiles for m in molecules], build_iupac.cache_path(ctx.cache_dir)
    )
    statuses = Counter(r.status for r in names.values())
    verified = {s: r.name for s, r in names.items() if r.status == build_iupac.EXACT}
    stats.extra["naming"] = {
        "wall_s": round(time.perf_counter() - t_name, 2),
        "named": int(timing["named"]),
        "cached": int(timing["cached"]),
        "status": dict(statuses),
    }

    chem = build_facts._rdkit()
    all_types = [q.qtype for q in build_qa.QUESTIONS]
    rng_qa = random.Random(f"{TASK}:qa:{seed}")
    rng_iupac = random.Random(f"{TASK}:iupac:{seed}")
    rng_facts = random.Random(f"{TASK}:facts:{seed}")
    qa: list[InstructionRecord] = []
    iupac: list[InstructionRecord] = []
    facts: list[InstructionRecord] = []

    def record(task: Task, m: PoolMolecule, instruction: str, answer: str, source: str) -> Any:
        return InstructionRecord(task.value, m.smiles, instruction, answer, source, "train")

    for m in molecules:
        name = verified.get(m.smiles)
        if name is not None:
            iupac.append(record(Task.IUPAC, m, pick(rng_iupac, IUPAC.instructions), name, m.source))
        single = build_qa._mol(m.smiles)
        if single is None:
            stats.skipped["qa:multi-fragment"] += 1
        else:
            qtypes = rng_qa.sample(all_types, min(questions_per_molecule, len(all_types)))
            qa.extend(build_qa.qa_records(single, m, qtypes, rng_qa, "train"))
        mol = chem.MolFromSmiles(m.smiles)
        text = build_facts.describe(mol, name, rng_facts) if mol is not None else None
        if text is None:
            stats.skipped["facts:no-facts"] += 1
        else:
            instruction = pick(rng_facts, build_facts.FACTS_INSTRUCTIONS)
            source = build_facts.FACTS_SOURCE_PREFIX + m.source
            facts.append(record(Task.DESCRIPTION, m, instruction, text, source))
    for kind, records in (("qa", qa), ("iupac", iupac), ("facts", facts)):
        path = out_dir / f"{PREFIX}{kind}_train.jsonl"
        stats.records[f"{kind}:train"] = write_jsonl(path, records)
        stats.files[f"{kind}:train"] = str(path)
    stats.wall_s = time.perf_counter() - t0
    logger.info("%s: %s", TASK, stats.to_dict())
    return stats
