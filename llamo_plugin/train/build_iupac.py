"""IUPAC-name task: openclatura names that OPSIN parses back to the identical structure.

Molecules: QM9 (all, or ``max_molecules`` of them) and ChEBI-20 validation, never an
evaluation or held-out molecule. Names:

- QM9: generated here with ``openclatura.name`` and parsed back with OPSIN (``py2opsin``,
  needs Java) in batches; a name is kept only when RDKit's canonical isomeric SMILES of
  OPSIN's structure equals that of the input (``exact``). Results are cached in
  ``<cache_dir>/iupac_names-openclatura-<v>-py2opsin-<v>.tsv`` (appended in chunks, so an
  interrupted build resumes where it stopped);
- ChEBI-20 validation: the rows of ``../shared/data/chebi-20-iupac-openclatura`` with
  ``split=validation`` and ``opsin_roundtrip=exact`` (same tools and versions).

Statuses: ``exact`` (kept), ``stereo_differs``, ``mismatch``, ``unparsed`` (OPSIN gave
nothing), ``unnamed`` (openclatura gave no name), ``error`` (openclatura raised).
"""

from __future__ import annotations

import csv
import importlib.metadata
import logging
import random
import shutil
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llamo_plugin.chem.naming import generate_name
from llamo_plugin.tasks import IUPAC, Task
from llamo_plugin.train.context import BuildContext, make_context, pick
from llamo_plugin.train.records import BuildStats, InstructionRecord, write_jsonl
from llamo_plugin.train.sources import (
    CHEBI_VAL,
    QM9,
    BuildError,
    mol_identity,
    read_chebi_names,
)
from llamo_plugin.train.splits import PoolMolecule

logger = logging.getLogger(__name__)

EXACT = "exact"
CACHE_COLUMNS = ("smiles", "name", "opsin_smiles", "status")
#: Seconds openclatura may spend on one molecule (main thread only).
#: Molecules per naming chunk (one OPSIN call each; OPSIN's JVM warms up over a batch).
CHUNK = 5000


@dataclass(frozen=True)
class NameResult:
    """The name of one molecule and its OPSIN round trip."""

    smiles: str
    name: str
    opsin_smiles: str
    status: str


def cache_path(cache_dir: Path) -> Path:
    """The name cache of the installed openclatura / py2opsin versions."""
    oc = importlib.metadata.version("openclatura")
    po = importlib.metadata.version("py2opsin")
    return Path(cache_dir) / f"iupac_names-openclatura-{oc}-py2opsin-{po}.tsv"


def read_cache(path: Path) -> dict[str, NameResult]:
    """Cached results by input SMILES (a missing file is an empty cache)."""
    if not path.is_file():
        return {}
    out: dict[str, NameResult] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if tuple(header or ()) != CACHE_COLUMNS:
            raise BuildError(f"{path}: unexpected header {header}")
        for row in reader:
            if len(row) == len(CACHE_COLUMNS):  # a torn last line is ignored
                out[row[0]] = NameResult(*row)
    return out


def _append_cache(path: Path, results: Sequence[NameResult]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.is_file()
    with path.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n")
        if new:
            writer.writerow(CACHE_COLUMNS)
        for r in results:
            writer.writerow([r.smiles, r.name, r.opsin_smiles, r.status])


# --------------------------------------------------------------------------- naming


def opsin_parse(names: Sequence[str]) -> list[str]:
    """OPSIN SMILES for each name (``""`` where OPSIN fails), one Java call per batch."""
    if not names:
        return []
    if shutil.which("java") is None:
        raise BuildError("OPSIN needs Java (java not found on PATH)")
    from py2opsin import py2opsin

    with tempfile.TemporaryDirectory(prefix="llamo-opsin-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = py2opsin(list(names), tmp_fpath=str(Path(tmp) / "names.txt"))
        except Exception:
            out = False
    if isinstance(out, list) and len(out) == len(names):
        return [s.strip() for s in out]
    if len(names) == 1:
        return [""]
    half = len(names) // 2  # a batch failed as a whole: split it to isolate the culprit
    return opsin_parse(names[:half]) + opsin_parse(names[half:])


def compare(smiles: str, opsin_smiles: str) -> str:
    """Round-trip status of OPSIN's structure against the input."""
    if not opsin_smiles:
        return "unparsed"
    back = mol_identity(opsin_smiles)
    ref = mol_identity(smiles)
    if back is None or ref is None:
        return "unparsed"
    if back.smiles == ref.smiles:
        return EXACT
    from llamo_plugin.chem.smiles import canonical_smiles, mol_from_smiles

    flat = canonical_smiles(mol_from_smiles(back.smiles))
    return "stereo_differs" if flat == canonical_smiles(mol_from_smiles(ref.smiles)) else "mismatch"


def name_molecules(
    smiles: Sequence[str], cache_file: Path, *, chunk: int = CHUNK
) -> tuple[dict[str, NameResult], dict[str, float]]:
    """Names + round trips for canonical isomeric ``smiles``, using and filling the cache.

    Returns the results and timing figures (molecules named, seconds naming and in OPSIN).
    """
    cached = read_cache(cache_file)
    todo = [s for s in dict.fromkeys(smiles) if s not in cached]
    timing = {"cached": float(len(smiles) - len(todo)), "named": 0.0, "name_s": 0.0, "opsin_s": 0.0}
    if todo:
        logger.info("iupac: %d molecules cached, %d to name", len(cached), len(todo))
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        t0 = time.perf_counter()
        generated = [generate_name(s) for s in part]
        t1 = time.perf_counter()
        named = [(s, n) for s, (n, st) in zip(part, generated, strict=True) if not st]
        parsed = opsin_parse([n for _, n in named])
        t2 = time.perf_counter()
        back = dict(zip([s for s, _ in named], parsed, strict=True))
        results = []
        for s, (name, status) in zip(part, generated, strict=True):
            if status:
                results.append(NameResult(s, "", "", status))
            else:
                results.append(NameResult(s, name, back[s], compare(s, back[s])))
        _append_cache(cache_file, results)
        cached.update((r.smiles, r) for r in results)
        timing["named"] += len(part)
        timing["name_s"] += t1 - t0
        timing["opsin_s"] += t2 - t1
        done = start + len(part)
        logger.info(
            "iupac: named %d/%d (openclatura %.0f/s, OPSIN %.0f/s, %d exact in chunk)",
            done,
            len(todo),
            len(part) / max(t1 - t0, 1e-9),
            len(named) / max(t2 - t1, 1e-9),
            sum(r.status == EXACT for r in results),
        )
    return {s: cached[s] for s in smiles}, timing


# --------------------------------------------------------------------------- build


def chebi_names(data_dir: Path) -> dict[str, str]:
    """Canonical isomeric SMILES -> exact-round-trip name, ChEBI-20 validation rows only."""
    out: dict[str, str] = {}
    for row in read_chebi_names(data_dir):
        if row.split != "validation" or row.opsin_roundtrip != EXACT or not row.name.strip():
            continue
        identity = mol_identity(row.smiles)
        if identity is not None:
            out.setdefault(identity.smiles, row.name.strip())
    return out


def verified_names(ctx: BuildContext) -> dict[str, str]:
    """Every verified name available without naming anything (ChEBI file + QM9 cache)."""
    names = {
        r.smiles: r.name
        for r in read_cache(cache_path(ctx.cache_dir)).values()
        if r.status == EXACT
    }
    names.update(chebi_names(ctx.data_dir))
    return names


def build(
    data_dir: Path | None = None,
    out_dir: Path = Path("data/build"),
    *,
    seed: int = 0,
    max_molecules: int | None = None,
    context: BuildContext | None = None,
) -> BuildStats:
    """Write ``iupac_train.jsonl`` and ``iupac_val.jsonl`` to ``out_dir``.

    Args:
        max_molecules: at most this many QM9 training molecules (seeded subsample); the
            ChEBI-20 molecules (names already computed) are always all used.
    """
    t0 = time.perf_counter()
    ctx = context or make_context(data_dir)
    stats = BuildStats(task=Task.IUPAC.value)
    out_dir = Path(out_dir)
    chebi = chebi_names(ctx.data_dir)

    # ChEBI-20 first (their names exist), so QM9 repeats of ChEBI molecules are dropped
    seen: set[str] = set()
    chebi_train = list(
        ctx.iter_training(
            [(s, s) for s in chebi],
            source=CHEBI_VAL,
            seed=seed,
            salt="iupac",
            skipped=stats.skipped,
            seen=seen,
        )
    )
    qm9_train = list(
        ctx.iter_training(
            [(str(r.index), r.smiles) for r in ctx.qm9],
            source=QM9,
            seed=seed,
            salt="iupac",
            skipped=stats.skipped,
            max_molecules=max_molecules,
            seen=seen,
        )
    )
    val = ctx.val_molecules()
    qm9_smiles = [m.smiles for m in qm9_train] + [m.smiles for m in val if m.source == QM9]
    t_name = time.perf_counter()
    results, timing = name_molecules(qm9_smiles, cache_path(ctx.cache_dir))
    stats.extra["naming"] = {
        **{k: round(v, 2) for k, v in timing.items()},
        "wall_s": round(time.perf_counter() - t_name, 2),
        "openclatura_per_s": round(timing["named"] / timing["name_s"], 1)
        if timing["name_s"]
        else None,
        "opsin_per_s": round(timing["named"] / timing["opsin_s"], 1) if timing["opsin_s"] else None,
        "qm9_status": dict(Counter(r.status for r in results.values())),
    }

    def name_of(m: PoolMolecule) -> str | None:
        if m.source == CHEBI_VAL:
            return chebi.get(m.smiles)
        r = results.get(m.smiles)
        return r.name if r is not None and r.status == EXACT else None

    for split, molecules in (("train", chebi_train + qm9_train), ("val", val)):
        rng = random.Random(f"iupac:{split}:{seed}")
        records = []
        for m in molecules:
            instruction = pick(rng, IUPAC.instructions)
            name = name_of(m)
            if name is None:
                stats.skipped[f"{split}:no-exact-name:{m.source}"] += 1
                continue
            records.append(
                InstructionRecord(
                    task=Task.IUPAC.value,
                    smiles=m.smiles,
                    instruction=instruction,
                    answer=name,
                    source=m.source,
                    split=split,
                )
            )
            stats.molecules[f"{split}:{m.source}"] += 1
        path = out_dir / f"iupac_{split}.jsonl"
        stats.records[split] = write_jsonl(path, records)
        stats.files[split] = str(path)
    stats.wall_s = time.perf_counter() - t0
    logger.info("iupac: %s", stats.to_dict())
    return stats
