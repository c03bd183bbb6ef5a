"""Retrieval-augmented description task: each prompt carries the k most similar annotated
molecules (:mod:`llamo_plugin.prompt.neighbours`), retrieved leave-one-out.

- ``description_rag_train.jsonl``: the training description molecules (ChEBI-20 validation
  minus the held-out slice and every evaluation molecule) plus PCdes (restyled to ChEBI-20's
  wording; :func:`~llamo_plugin.train.sources.read_pcdes`). Neighbours come from that same
  training pool, never the molecule itself, a stereoisomer or another protonation state of it
  (same first InChIKey block). A fraction ``no_context`` of the records carries no
  neighbours, so the model still describes a molecule when retrieval is off.
- ``description_rag_val.jsonl``: the held-out description slice with neighbours from the
  bundled reference set (what users get), leave-one-out the same way.

Targets are the molecules' own captions.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

from llamo_plugin.prompt.neighbours import NeighbourText, with_neighbours
from llamo_plugin.tasks import DESCRIPTION, Task
from llamo_plugin.train.context import BuildContext, make_context, pick
from llamo_plugin.train.records import BuildStats, InstructionRecord, write_jsonl
from llamo_plugin.train.sources import CHEBI_VAL, PCDES, mol_identity, read_chebi, read_pcdes

logger = logging.getLogger(__name__)

#: neighbours per prompt (the product's default ``--neighbours``)
K = 2


def _texts(hits: list | None) -> list[NeighbourText]:
    return [NeighbourText(h.smiles, h.similarity, h.caption) for h in hits or ()]


def build(
    data_dir: Path | None = None,
    out_dir: Path = Path("data/build"),
    *,
    seed: int = 0,
    k: int = K,
    no_context: float = 0.2,
    context: BuildContext | None = None,
) -> BuildStats:
    """Write ``description_rag_train.jsonl`` and ``description_rag_val.jsonl``."""
    from llamo_plugin.retrieval import NearestNeighbours

    t0 = time.perf_counter()
    ctx = context or make_context(data_dir)
    stats = BuildStats(task="description_rag")
    rng = random.Random(f"description_rag:{seed}")
    val_keys = {m.inchikey for m in ctx.plan.description_val}
    pool: dict[str, list[tuple[str, str, str]]] = {"train": [], "val": []}  # (id, smiles, text)
    seen: set[str] = set()
    sources = [(CHEBI_VAL, r) for r in read_chebi(ctx.data_dir, "validation")]
    sources += [(PCDES, r) for r in read_pcdes(ctx.data_dir)]
    source_of: dict[str, str] = {}
    for source, row in sources:
        identity = mol_identity(row.smiles)
        if identity is None:
            stats.skipped[f"{source}:unparseable"] += 1
            continue
        if not row.description.strip():
            stats.skipped[f"{source}:empty-description"] += 1
            continue
        if identity.inchikey in seen:  # PCdes rows also in ChEBI-20 validation
            stats.skipped[f"{source}:duplicate"] += 1
            continue
        if identity.inchikey in val_keys:
            split = "val"
        else:
            reason = ctx.skip_reason(identity)
            if reason is not None:
                stats.skipped[f"{source}:{reason}"] += 1
                continue
            split = "train"
        seen.add(identity.inchikey)
        rid = f"{source}:{row.cid}"
        source_of[rid] = source
        pool[split].append((rid, identity.smiles, row.description.strip()))

    train_ids, train_smiles, train_texts = (list(x) for x in zip(*pool["train"], strict=True))
    train_nn = NearestNeighbours(train_ids, train_smiles, train_texts)
    reference = NearestNeighbours.from_table()  # the bundled set: what users retrieve from
    by_split: dict[str, list[InstructionRecord]] = {"train": [], "val": []}
    for split, index in (("train", train_nn), ("val", reference)):
        rows = pool[split]
        hits = index.query_k([s for _, s, _ in rows], k, leave_out="skeleton")
        for (rid, smiles, text), found in zip(rows, hits, strict=True):
            instruction = pick(rng, DESCRIPTION.instructions)
            if split == "train" and rng.random() < no_context:
                stats.extra["no_context_records"] = stats.extra.get("no_context_records", 0) + 1
            else:
                instruction = with_neighbours(instruction, _texts(found))
            by_split[split].append(
                InstructionRecord(
                    task=Task.DESCRIPTION.value,
                    smiles=smiles,
                    instruction=instruction,
                    answer=text,
                    source=source_of[rid],
                    split=split,
                    qtype="retrieval",
                )
            )

    out_dir = Path(out_dir)
    for split, records in by_split.items():
        path = out_dir / f"description_rag_{split}.jsonl"
        stats.records[split] = write_jsonl(path, records)
        stats.molecules[split] = len(records)
        stats.files[split] = str(path)
    stats.extra.update(k=k, no_context=no_context, reference_checksum=reference.checksum)
    stats.extra["train_sources"] = {
        s: sum(1 for r in by_split["train"] if r.source == s) for s in (CHEBI_VAL, PCDES)
    }
    stats.wall_s = time.perf_counter() - t0
    logger.info("description_rag: %s", stats.to_dict())
    return stats
