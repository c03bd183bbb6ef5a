"""Drug-like HOMO-LUMO gaps: ``pubchem-gap-iqspr`` (12,122 PubChem molecules, DFT gap in eV).

QM9 molecules have at most 9 heavy atoms; users' molecules look like these. The values come
from a different level of theory than QM9's (PubChemQC-style B3LYP, basis not stated; the
dataset's ``SOURCE.md``), so they are **never pooled with QM9's gap**: they get their own
instructions, which name the unit and the source ("... in eV (PubChem DFT)"), and their own
answer format, a bare number in eV with 2 decimals (``5.73``), ``qtype`` ``gap_pubchem_ev``.

Splits, by molecule skeleton (first InChIKey block, so stereoisomers and protonation states of
a molecule share a split), seeded and independent of the build seed:

- ``test``: 1,000 skeletons, committed as ``llamo_plugin/resources/splits/pubchem_gap_test.csv``
  (``smiles, gap_ev``; evaluation only, never used for selection);
- ``val``: 1,000 skeletons (model selection), ``pubchem_gap_val.csv`` beside it;
- ``train``: the rest, minus every evaluation and held-out molecule of the build context
  (InChIKey exclusion, as every builder).
"""

from __future__ import annotations

import csv
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

from llamo_plugin.tasks import PUBCHEM_GAP, Task
from llamo_plugin.train.context import BuildContext, make_context, pick
from llamo_plugin.train.records import BuildStats, InstructionRecord, write_jsonl
from llamo_plugin.train.splits import seeded_order

logger = logging.getLogger(__name__)

SOURCE = "pubchem-gap-iqspr"
DATA_FILE = Path("pubchem-gap-iqspr") / "pubchem_gap.csv"
QTYPE = "gap_pubchem_ev"
TEST_FILE = "pubchem_gap_test.csv"
VAL_FILE = "pubchem_gap_val.csv"
N_TEST = 1000
N_VAL = 1000
#: Phrasings (the first is the default) and answer format: the task spec in
#: :mod:`llamo_plugin.tasks`; they name unit and source on purpose (not QM9's level of theory).
INSTRUCTIONS = PUBCHEM_GAP.instructions
ANSWER_FORMAT = PUBCHEM_GAP.answer_format


def format_gap_ev(value: float) -> str:
    """The answer text: eV with 2 decimals (``5.73``)."""
    return f"{value:.2f}"


@dataclass(frozen=True)
class GapRow:
    """One molecule: RDKit canonical isomeric SMILES, gap in eV, InChIKey."""

    smiles: str
    gap_ev: float
    inchikey: str


def read_gap_rows(data_dir: Path) -> tuple[list[GapRow], int]:
    """Parsed rows of the source file (one per InChIKey) and the unparseable count."""
    from llamo_plugin.train.sources import mol_identity

    rows: list[GapRow] = []
    seen: set[str] = set()
    bad = 0
    with open(data_dir / DATA_FILE, newline="", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh):
            identity = mol_identity(rec["SMILES"])
            if identity is None:
                bad += 1
                continue
            if identity.inchikey in seen:
                continue
            seen.add(identity.inchikey)
            rows.append(GapRow(identity.smiles, float(rec["gap_ev"]), identity.inchikey))
    return rows, bad


def split_rows(
    rows: list[GapRow], *, n_test: int = N_TEST, n_val: int = N_VAL
) -> dict[str, list[GapRow]]:
    """Seeded split by skeleton: the first ``n_test`` skeletons in a fixed order are test,
    the next ``n_val`` val, the rest train."""
    skeletons = sorted({r.inchikey[:14] for r in rows})
    order = seeded_order(len(skeletons), seed=0, salt="pubchem-gap-split")
    test = {skeletons[i] for i in order[:n_test]}
    val = {skeletons[i] for i in order[n_test : n_test + n_val]}
    out: dict[str, list[GapRow]] = {"train": [], "val": [], "test": []}
    for r in rows:
        sk = r.inchikey[:14]
        out["test" if sk in test else "val" if sk in val else "train"].append(r)
    return out


def write_split_csv(path: Path, rows: list[GapRow]) -> None:
    """``smiles,gap_ev`` (the format ``llamo evaluate --task pubchem-gap`` reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["smiles", "gap_ev"])
        for r in rows:
            writer.writerow([r.smiles, repr(r.gap_ev)])


def build(
    data_dir: Path | None = None,
    out_dir: Path = Path("data/build"),
    *,
    seed: int = 0,
    max_molecules: int | None = None,
    write_splits: bool = False,
    context: BuildContext | None = None,
) -> BuildStats:
    """Write ``pubchem_gap_{train,val,test}.jsonl`` and the val/test CSVs into ``out_dir``
    (and, with ``write_splits``, the committed copies under ``resources/splits``)."""
    t0 = time.perf_counter()
    ctx = context or make_context(data_dir)
    stats = BuildStats(task="pubchem_gap")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, bad = read_gap_rows(ctx.data_dir)
    stats.skipped["unparseable"] += bad
    splits = split_rows(rows)
    from llamo_plugin.train.sources import MolIdentity

    train: list[GapRow] = []
    for r in splits["train"]:
        reason = ctx.skip_reason(MolIdentity(r.smiles, r.inchikey))
        if reason is not None:
            stats.skipped[reason] += 1
            continue
        train.append(r)
    if max_molecules is not None:
        train = train[:max_molecules]
    for name, split_rows_ in (("val", splits["val"]), ("test", splits["test"])):
        file = TEST_FILE if name == "test" else VAL_FILE
        write_split_csv(out_dir / file, split_rows_)
        if write_splits:
            write_split_csv(ctx.splits_dir / file, split_rows_)
        stats.files[f"{name}_csv"] = str(out_dir / file)
    for split, items in (("train", train), ("val", splits["val"]), ("test", splits["test"])):
        rng = random.Random(f"pubchem-gap:{split}:{seed}") if split == "train" else None
        records = [
            InstructionRecord(
                task=Task.PROPERTY.value,
                smiles=r.smiles,
                instruction=pick(rng, INSTRUCTIONS) if rng is not None else INSTRUCTIONS[0],
                answer=format_gap_ev(r.gap_ev),
                source=SOURCE,
                split=split,
                qtype=QTYPE,
            )
            for r in items
        ]
        path = out_dir / f"pubchem_gap_{split}.jsonl"
        stats.records[split] = write_jsonl(path, records)
        stats.molecules[split] = len(items)
        stats.files[split] = str(path)
    stats.wall_s = time.perf_counter() - t0
    logger.info("pubchem_gap: %s", stats.to_dict())
    return stats
