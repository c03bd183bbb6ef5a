"""Description task: ChEBI-20 ``validation.txt`` captions.

Every ChEBI-20 validation row becomes one record (``molecule -> "The molecule is ..."``) with
an instruction drawn from :data:`llamo_plugin.tasks.DESCRIPTION`. Rows of the held-out
description slice (:mod:`~llamo_plugin.train.splits`, 300 molecules by default) are written as
``split="val"`` for model selection; rows whose molecule is an evaluation molecule (ChEBI-20
``test.txt`` and the other evaluation sets, RDKit's NCI molecules) or another held-out molecule
are dropped. ``test.txt`` is read only for its SMILES, inside the exclusion.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

from llamo_plugin.tasks import DESCRIPTION, Task
from llamo_plugin.train.context import BuildContext, make_context, pick
from llamo_plugin.train.records import BuildStats, InstructionRecord, write_jsonl
from llamo_plugin.train.sources import CHEBI_VAL, mol_identity, read_chebi

logger = logging.getLogger(__name__)


def build(
    data_dir: Path | None = None,
    out_dir: Path = Path("data/build"),
    *,
    seed: int = 0,
    context: BuildContext | None = None,
) -> BuildStats:
    """Write ``description_train.jsonl`` and ``description_val.jsonl`` to ``out_dir``."""
    t0 = time.perf_counter()
    ctx = context or make_context(data_dir)
    stats = BuildStats(task=Task.DESCRIPTION.value)
    rng = random.Random(f"description:{seed}")
    val_keys = {m.inchikey for m in ctx.plan.description_val}
    by_split: dict[str, list[InstructionRecord]] = {"train": [], "val": []}
    molecules: dict[str, set[str]] = {"train": set(), "val": set()}

    for row in read_chebi(ctx.data_dir, "validation"):
        instruction = pick(rng, DESCRIPTION.instructions)  # drawn for every row: stable
        identity = mol_identity(row.smiles)
        if identity is None:
            stats.skipped["unparseable"] += 1
            continue
        if not row.description.strip():
            stats.skipped["empty-description"] += 1
            continue
        if identity.inchikey in val_keys:
            split = "val"
        else:
            reason = ctx.skip_reason(identity)
            if reason is not None:
                stats.skipped[reason] += 1
                continue
            split = "train"
        by_split[split].append(
            InstructionRecord(
                task=Task.DESCRIPTION.value,
                smiles=identity.smiles,
                instruction=instruction,
                answer=row.description.strip(),
                source=CHEBI_VAL,
                split=split,
            )
        )
        molecules[split].add(identity.inchikey)

    out_dir = Path(out_dir)
    for split, records in by_split.items():
        path = out_dir / f"description_{split}.jsonl"
        stats.records[split] = write_jsonl(path, records)
        stats.molecules[split] = len(molecules[split])
        stats.files[split] = str(path)
    stats.wall_s = time.perf_counter() - t0
    logger.info("description: %s", stats.to_dict())
    return stats
