"""Property task: QM9 HOMO, LUMO and HOMO-LUMO gap in Hartree.

Each molecule gives three records (``qtype`` = ``homo`` / ``lumo`` / ``gap``) whose answers
are Mol-Instructions style bare numbers with 4 decimals (:func:`llamo_plugin.tasks.
format_property_value`, e.g. ``-0.2482``). Splits, by molecule:

- ``test``: the fixed, seeded 2,000-molecule split committed as
  ``llamo_plugin/resources/splits/qm9_property_test.csv`` (columns ``index, smiles, homo,
  lumo, gap``); its records use each property's default instruction;
- ``val``: the QM9 val slice (1,000 molecules by default) for model selection (also written
  as ``qm9_property_val.csv`` for ``llamo evaluate --task property --property-test``);
- ``train``: every other QM9 molecule that is not an evaluation or held-out molecule (one per
  canonical isomeric SMILES), optionally subsampled to ``max_molecules``.
"""

from __future__ import annotations

import logging
import random
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from llamo_plugin.tasks import PROPERTIES, Property, Task, format_property_value
from llamo_plugin.train.context import BuildContext, make_context, pick
from llamo_plugin.train.records import BuildStats, InstructionRecord, write_jsonl
from llamo_plugin.train.sources import QM9
from llamo_plugin.train.splits import PROPERTY_TEST_FILE, PropertyTestRow, write_property_test

#: The QM9 val slice as a split CSV (same columns as the test split; model selection only).
PROPERTY_VAL_FILE = "qm9_property_val.csv"

logger = logging.getLogger(__name__)


def property_records(
    smiles: str,
    values: dict[Property, float],
    split: str,
    rng: random.Random | None,
) -> list[InstructionRecord]:
    """Three records for one molecule; ``rng=None`` uses each property's default instruction."""
    out = []
    for prop in Property:
        spec = PROPERTIES[prop]
        instruction = pick(rng, spec.instructions) if rng is not None else spec.default_instruction
        out.append(
            InstructionRecord(
                task=Task.PROPERTY.value,
                smiles=smiles,
                instruction=instruction,
                answer=format_property_value(values[prop]),
                source=QM9,
                split=split,
                qtype=prop.value,
            )
        )
    return out


def build(
    data_dir: Path | None = None,
    out_dir: Path = Path("data/build"),
    *,
    seed: int = 0,
    max_molecules: int | None = None,
    write_splits: bool = False,
    context: BuildContext | None = None,
) -> BuildStats:
    """Write ``property_{train,val,test}.jsonl`` and a copy of the test split CSV.

    Args:
        max_molecules: at most this many training molecules (seeded subsample).
        write_splits: (re)write the committed ``resources/splits/qm9_property_test.csv``.
    """
    t0 = time.perf_counter()
    ctx = context or make_context(data_dir)
    stats = BuildStats(task=Task.PROPERTY.value)
    out_dir = Path(out_dir)
    by_index = {str(r.index): r for r in ctx.qm9}

    def values(index: str) -> dict[Property, float]:
        row = by_index[index]
        return {Property.HOMO: row.homo, Property.LUMO: row.lumo, Property.GAP: row.gap}

    # test: the committed split (or the in-memory selection when it is missing)
    committed = ctx.splits_dir / PROPERTY_TEST_FILE
    if write_splits:
        write_property_test(committed, ctx.plan.property_test)
        logger.info("property: wrote %s", committed)
    csv_copy = out_dir / PROPERTY_TEST_FILE
    out_dir.mkdir(parents=True, exist_ok=True)
    if committed.is_file():
        shutil.copyfile(committed, csv_copy)
    else:
        logger.warning("property: %s is missing; the split is only in %s", committed, out_dir)
        write_property_test(csv_copy, ctx.plan.property_test)
    stats.files["test_csv"] = str(csv_copy)
    test_records = [
        rec
        for r in ctx.plan.property_test
        for rec in property_records(
            r.smiles,
            {Property.HOMO: r.homo, Property.LUMO: r.lumo, Property.GAP: r.gap},
            "test",
            None,
        )
    ]

    def sampled(molecules: Iterable[tuple[str, str]], split: str) -> Iterable[InstructionRecord]:
        rng = random.Random(f"property:{split}:{seed}")
        for index, smiles in molecules:
            stats.molecules[split] += 1
            yield from property_records(smiles, values(index), split, rng)

    val = [(m.ident, m.smiles) for m in ctx.plan.qm9_val if m.inchikey not in ctx.plan.test_keys]
    train = (
        (m.ident, m.smiles)
        for m in ctx.iter_training(
            [(str(r.index), r.smiles) for r in ctx.qm9],
            source=QM9,
            seed=seed,
            salt="property",
            skipped=stats.skipped,
            max_molecules=max_molecules,
        )
    )
    for split, records in (
        ("train", sampled(train, "train")),
        ("val", sampled(val, "val")),
        ("test", iter(test_records)),
    ):
        path = out_dir / f"property_{split}.jsonl"
        stats.records[split] = write_jsonl(path, records)
        stats.files[split] = str(path)
    # the val slice as a CSV too, for `llamo evaluate --task property --property-test`
    val_csv = out_dir / PROPERTY_VAL_FILE
    write_property_test(
        val_csv,
        [
            PropertyTestRow(int(i), s, by_index[i].homo, by_index[i].lumo, by_index[i].gap)
            for i, s in val
        ],
    )
    stats.files["val_csv"] = str(val_csv)
    stats.molecules["test"] = len(ctx.plan.property_test)
    stats.wall_s = time.perf_counter() - t0
    logger.info("property: %s", stats.to_dict())
    return stats
