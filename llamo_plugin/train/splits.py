"""Molecule-level held-out slices, shared by every task.

The training pools (QM9 and ChEBI-20 ``validation.txt``) are split once, by molecule, and
every task uses the same split, so no held-out molecule is trained on under another task:

- ``description-val``: ``n_description_val`` ChEBI-20 validation molecules (seeded by
  ``split_seed``) -- the description val records, and the val molecules of the other tasks;
- ``qm9-val``: ``n_qm9_val`` QM9 molecules (seeded by ``split_seed``) -- property / IUPAC /
  QA / facts val records;
- ``qm9-property-test``: the fixed 2,000-molecule QM9 test split committed as
  ``llamo_plugin/resources/splits/qm9_property_test.csv`` (chosen with
  :data:`FIXED_SPLIT_SEED`);
- ``qa-test``: the molecules of the committed ``qa_test.jsonl``: 200 of the property-test
  molecules and 100 of the description-val molecules (both chosen with
  :data:`FIXED_SPLIT_SEED`).

Selection walks a seeded permutation of the pool and skips unparseable molecules, molecules
blocked by the evaluation exclusion (evaluation sets, RDKit's NCI molecules) and repeats of a
key already taken; only the walked molecules are parsed, so a plan costs a few seconds.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llamo_plugin.train.sources import (
    CHEBI_VAL,
    QM9,
    BuildError,
    MolIdentity,
    Qm9Row,
    mol_identity,
    read_chebi,
    read_qm9,
)

logger = logging.getLogger(__name__)

#: Seed of the committed test splits (never changes; the files are the source of truth).
FIXED_SPLIT_SEED = 0
N_PROPERTY_TEST = 2000
N_QA_TEST_QM9 = 200
N_QA_TEST_CHEBI = 100
DEFAULT_N_DESCRIPTION_VAL = 300
DEFAULT_N_QM9_VAL = 1000

PROPERTY_TEST_FILE = "qm9_property_test.csv"
QA_TEST_FILE = "qa_test.jsonl"
PROPERTY_TEST_COLUMNS = ("index", "smiles", "homo", "lumo", "gap")

#: Held-out slice names, as they appear in the exclusion report.
DESCRIPTION_VAL = "description-val"
QM9_VAL = "qm9-val"
PROPERTY_TEST = "qm9-property-test"
QA_TEST = "qa-test"


def default_splits_dir() -> Path:
    """``llamo_plugin/resources/splits`` (the committed test splits)."""
    return Path(__file__).resolve().parents[1] / "resources" / "splits"


@dataclass(frozen=True)
class PoolMolecule:
    """A molecule of a training pool with its identity."""

    source: str
    ident: str
    smiles: str
    inchikey: str

    @classmethod
    def of(cls, source: str, ident: str, identity: MolIdentity) -> PoolMolecule:
        return cls(source, ident, identity.smiles, identity.inchikey)


@dataclass(frozen=True)
class PropertyTestRow:
    """One row of the committed QM9 property test split (values in Hartree)."""

    index: int
    smiles: str
    homo: float
    lumo: float
    gap: float


def seeded_order(n: int, *, seed: int, salt: str) -> list[int]:
    """A permutation of ``range(n)`` that depends only on ``seed`` and ``salt``."""
    order = list(range(n))
    random.Random(f"{salt}:{seed}").shuffle(order)
    return order


def select_molecules(
    candidates: Sequence[tuple[str, str]],
    n: int,
    *,
    source: str,
    seed: int,
    salt: str,
    blocked: Callable[[MolIdentity], bool],
) -> list[PoolMolecule]:
    """``n`` distinct molecules from ``(ident, smiles)`` candidates, in seeded order."""
    taken: list[PoolMolecule] = []
    seen: set[str] = set()
    for i in seeded_order(len(candidates), seed=seed, salt=salt):
        if len(taken) >= n:
            break
        ident, smiles = candidates[i]
        identity = mol_identity(smiles)
        if identity is None or identity.inchikey in seen or blocked(identity):
            continue
        seen.add(identity.inchikey)
        taken.append(PoolMolecule.of(source, ident, identity))
    if len(taken) < n:
        raise BuildError(f"only {len(taken)} of {n} molecules available for {salt}")
    return taken


# --------------------------------------------------------------------------- property test


def select_property_test(
    qm9: Sequence[Qm9Row],
    blocked: Callable[[MolIdentity], bool],
    n: int = N_PROPERTY_TEST,
) -> list[PropertyTestRow]:
    """The fixed 2,000-molecule QM9 test split, sorted by QM9 index."""
    by_index = {str(r.index): r for r in qm9}
    chosen = select_molecules(
        [(str(r.index), r.smiles) for r in qm9],
        n,
        source=QM9,
        seed=FIXED_SPLIT_SEED,
        salt="qm9-property-test",
        blocked=blocked,
    )
    rows = []
    for m in chosen:
        r = by_index[m.ident]
        rows.append(PropertyTestRow(r.index, m.smiles, r.homo, r.lumo, r.gap))
    return sorted(rows, key=lambda r: r.index)


def write_property_test(path: Path, rows: Sequence[PropertyTestRow]) -> None:
    """Write the property test split CSV (values with 4 decimals, as in QM9)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(PROPERTY_TEST_COLUMNS)
        for r in rows:
            writer.writerow([r.index, r.smiles, f"{r.homo:.4f}", f"{r.lumo:.4f}", f"{r.gap:.4f}"])


def read_property_test(path: Path) -> list[PropertyTestRow]:
    """Read the property test split CSV."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != PROPERTY_TEST_COLUMNS:
            raise BuildError(f"{path}: expected columns {PROPERTY_TEST_COLUMNS}")
        return [
            PropertyTestRow(
                int(r["index"]), r["smiles"], float(r["homo"]), float(r["lumo"]), float(r["gap"])
            )
            for r in reader
        ]


def verify_property_test(rows: Sequence[PropertyTestRow], qm9: Sequence[Qm9Row]) -> None:
    """Check the committed split against the QM9 file: same molecules and values."""
    from llamo_plugin.chem.smiles import canonical_smiles, mol_from_smiles
    from llamo_plugin.errors import InvalidSmilesError

    by_index = {r.index: r for r in qm9}
    for t in rows:
        q = by_index.get(t.index)
        try:
            same = (
                q is not None
                and canonical_smiles(mol_from_smiles(q.smiles), isomeric=True) == t.smiles
            )
        except InvalidSmilesError:
            same = False
        if not same or q is None:
            raise BuildError(f"property test row {t.index} does not match the QM9 file")
        if (round(q.homo, 4), round(q.lumo, 4), round(q.gap, 4)) != (t.homo, t.lumo, t.gap):
            raise BuildError(f"property test row {t.index}: values differ from the QM9 file")


# --------------------------------------------------------------------------- QA test


def select_qa_test_molecules(
    property_test: Sequence[PropertyTestRow], description_val: Sequence[PoolMolecule]
) -> list[PoolMolecule]:
    """200 property-test QM9 molecules + 100 description-val ChEBI-20 molecules (fixed seed).

    Only single-fragment molecules are taken (QA does not ask about salts).
    """
    qm9 = [
        property_test[i]
        for i in seeded_order(len(property_test), seed=FIXED_SPLIT_SEED, salt="qa-test-qm9")
        if "." not in property_test[i].smiles
    ][:N_QA_TEST_QM9]
    chebi = [
        description_val[i]
        for i in seeded_order(len(description_val), seed=FIXED_SPLIT_SEED, salt="qa-test-chebi")
        if "." not in description_val[i].smiles
    ][:N_QA_TEST_CHEBI]
    out = []
    for r in qm9:
        ident = mol_identity(r.smiles)
        assert ident is not None
        out.append(PoolMolecule.of(QM9, str(r.index), ident))
    return out + list(chebi)


def read_qa_test_molecules(path: Path) -> list[PoolMolecule]:
    """The distinct molecules of a QA test JSONL file, in file order."""
    out: list[PoolMolecule] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = json.loads(line)
            if rec["smiles"] in seen:
                continue
            seen.add(rec["smiles"])
            ident = mol_identity(rec["smiles"])
            if ident is None:
                raise BuildError(f"{path}: unparseable SMILES {rec['smiles']!r}")
            out.append(PoolMolecule.of(rec["source"], "", ident))
    return out


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class SplitPlan:
    """The held-out molecules of one build."""

    split_seed: int
    description_val: tuple[PoolMolecule, ...]
    qm9_val: tuple[PoolMolecule, ...]
    property_test: tuple[PropertyTestRow, ...]
    qa_test: tuple[PoolMolecule, ...]
    property_test_from_file: bool
    qa_test_from_file: bool

    @functools.cached_property
    def held_out_keys(self) -> dict[str, frozenset[str]]:
        """Slice name -> InChIKeys of its molecules."""

        def keys_of_rows(rows: Sequence[PropertyTestRow]) -> frozenset[str]:
            out = set()
            for r in rows:
                ident = mol_identity(r.smiles)
                if ident is not None:
                    out.add(ident.inchikey)
            return frozenset(out)

        return {
            DESCRIPTION_VAL: frozenset(m.inchikey for m in self.description_val),
            QM9_VAL: frozenset(m.inchikey for m in self.qm9_val),
            PROPERTY_TEST: keys_of_rows(self.property_test),
            QA_TEST: frozenset(m.inchikey for m in self.qa_test),
        }

    @functools.cached_property
    def val_keys(self) -> frozenset[str]:
        """Keys of the val molecules (description-val and qm9-val)."""
        keys = self.held_out_keys
        return keys[DESCRIPTION_VAL] | keys[QM9_VAL]

    @functools.cached_property
    def test_keys(self) -> frozenset[str]:
        """Keys of the test molecules (property test and QA test)."""
        keys = self.held_out_keys
        return keys[PROPERTY_TEST] | keys[QA_TEST]


def make_plan(
    data_dir: Path,
    *,
    split_seed: int,
    blocked: Callable[[MolIdentity], bool],
    n_description_val: int = DEFAULT_N_DESCRIPTION_VAL,
    n_qm9_val: int = DEFAULT_N_QM9_VAL,
    n_property_test: int = N_PROPERTY_TEST,
    splits_dir: Path | None = None,
    qm9: Sequence[Qm9Row] | None = None,
) -> SplitPlan:
    """Choose (or load) every held-out slice.

    The committed test splits are read from ``splits_dir`` when present (and the property
    split is checked against the QM9 file); otherwise they are selected in memory with
    :data:`FIXED_SPLIT_SEED` -- builders write them out on request. The sizes are
    parameters only so that tests can run on a small QM9 file.
    """
    splits_dir = splits_dir or default_splits_dir()
    qm9 = list(qm9) if qm9 is not None else read_qm9(data_dir)
    chebi = read_chebi(data_dir, "validation")
    chebi_candidates = [(r.cid, r.smiles) for r in chebi]

    prop_path = splits_dir / PROPERTY_TEST_FILE
    if prop_path.is_file():
        property_test = read_property_test(prop_path)
        verify_property_test(property_test, qm9)
    else:
        logger.warning("%s not found: selecting the property test split in memory", prop_path)
        property_test = select_property_test(qm9, blocked, n_property_test)
    test_keys = {mol_identity(r.smiles).inchikey for r in property_test}  # type: ignore[union-attr]

    def blocked_or_test(ident: MolIdentity) -> bool:
        return ident.inchikey in test_keys or blocked(ident)

    description_val = select_molecules(
        chebi_candidates,
        n_description_val,
        source=CHEBI_VAL,
        seed=split_seed,
        salt="description-val",
        blocked=blocked,
    )
    qm9_val = select_molecules(
        [(str(r.index), r.smiles) for r in qm9],
        n_qm9_val,
        source=QM9,
        seed=split_seed,
        salt="qm9-val",
        blocked=blocked_or_test,
    )

    qa_path = splits_dir / QA_TEST_FILE
    if qa_path.is_file():
        qa_test = read_qa_test_molecules(qa_path)
    else:
        logger.warning("%s not found: selecting the QA test molecules in memory", qa_path)
        fixed_val = description_val
        if split_seed != FIXED_SPLIT_SEED or n_description_val != DEFAULT_N_DESCRIPTION_VAL:
            fixed_val = select_molecules(
                chebi_candidates,
                DEFAULT_N_DESCRIPTION_VAL,
                source=CHEBI_VAL,
                seed=FIXED_SPLIT_SEED,
                salt="description-val",
                blocked=blocked,
            )
        qa_test = select_qa_test_molecules(property_test, fixed_val)

    return SplitPlan(
        split_seed=split_seed,
        description_val=tuple(description_val),
        qm9_val=tuple(qm9_val),
        property_test=tuple(property_test),
        qa_test=tuple(qa_test),
        property_test_from_file=prop_path.is_file(),
        qa_test_from_file=qa_path.is_file(),
    )
