"""Nearest-neighbour look-ups in an annotated molecule table (Morgan fingerprints, Tanimoto).

The bundled reference set is the ChEBI-20 **validation** split (3,301 molecules with their
captions; never the test split), ``llamo_plugin/resources/reference/chebi20_validation.tsv``
(columns ``cid``, ``smiles`` = RDKit canonical isomeric SMILES, ``caption``; CC BY 4.0, see
``ATTRIBUTION.md`` beside it). Fingerprints (Morgan radius 2, 2048 bits, as RDKit bit vectors)
are computed when the table is loaded (about a second for 3,300 molecules).

Users can point :meth:`NearestNeighbours.from_table` at their own annotated table.
"""

from __future__ import annotations

import csv
import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

BUNDLED_TABLE = "resources/reference/chebi20_validation.tsv"
FP_RADIUS = 2
FP_BITS = 2048
_SMILES_NAMES = ("smiles", "canonical_smiles")
_CAPTION_NAMES = ("caption", "description", "annotation", "text")
_ID_NAMES = ("cid", "id", "name")


@dataclass(frozen=True)
class Neighbour:
    """The most similar reference molecule of a query."""

    similarity: float
    caption: str
    cid: str
    smiles: str


def bundled_table_path() -> Path:
    """Path of the bundled ChEBI-20 validation reference table."""
    return Path(str(resources.files("llamo_plugin") / BUNDLED_TABLE))


def _canonical(smiles: str) -> tuple[Any, str] | None:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    if not isinstance(smiles, str) or not smiles.strip():
        return None
    mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return mol, Chem.MolToSmiles(mol, isomericSmiles=True)


@functools.lru_cache(maxsize=1)
def _generator() -> Any:
    from rdkit.Chem import rdFingerprintGenerator

    return rdFingerprintGenerator.GetMorganGenerator(radius=FP_RADIUS, fpSize=FP_BITS)


def _fingerprint(mol: Any) -> Any:
    return _generator().GetFingerprint(mol)


def _pick(columns: Iterable[str], wanted: str | None, names: Sequence[str], what: str) -> str:
    cols = list(columns)
    if wanted is not None:
        if wanted not in cols:
            raise ValueError(f"column {wanted!r} not in table (columns: {cols})")
        return wanted
    lower = {c.lower(): c for c in cols}
    for name in names:
        if name in lower:
            return lower[name]
    raise ValueError(f"no {what} column (tried {list(names)}; columns: {cols})")


class NearestNeighbours:
    """Tanimoto nearest neighbours over an annotated table of molecules.

    Rows whose SMILES do not parse are skipped (and counted in :attr:`n_skipped`).
    """

    def __init__(self, cids: Sequence[str], smiles: Sequence[str], captions: Sequence[str]) -> None:
        self.cids: list[str] = []
        self.smiles: list[str] = []
        self.captions: list[str] = []
        self.fingerprints: list[Any] = []
        self.n_skipped = 0
        for cid, smi, cap in zip(cids, smiles, captions, strict=True):
            parsed = _canonical(smi)
            if parsed is None:
                self.n_skipped += 1
                continue
            mol, canon = parsed
            self.cids.append(str(cid))
            self.smiles.append(canon)
            self.captions.append(cap)
            self.fingerprints.append(_fingerprint(mol))
        self._rows_by_smiles: dict[str, list[int]] = {}
        self._rows_by_id: dict[str, list[int]] = {}
        for i, (canon, cid) in enumerate(zip(self.smiles, self.cids, strict=True)):
            self._rows_by_smiles.setdefault(canon, []).append(i)
            self._rows_by_id.setdefault(cid, []).append(i)
        if not self.fingerprints:
            raise ValueError("the reference table has no parseable molecule")
        if self.n_skipped:
            logger.warning(
                "reference table: %d rows with unparseable SMILES skipped", self.n_skipped
            )

    def __len__(self) -> int:
        return len(self.fingerprints)

    @classmethod
    def from_table(
        cls,
        path: str | Path | None = None,
        *,
        smiles_column: str | None = None,
        caption_column: str | None = None,
        id_column: str | None = None,
    ) -> NearestNeighbours:
        """Load a TSV/CSV table (default: the bundled ChEBI-20 validation set).

        Columns are found by name (case-insensitive: ``smiles``; ``caption`` or ``description``;
        ``cid`` or ``id``) unless given. A ``.csv`` file is comma-separated, anything else
        tab-separated; TSV is read without quote processing (captions contain quotes).
        """
        table = Path(path) if path is not None else bundled_table_path()
        is_csv = table.suffix.lower() == ".csv"
        with open(table, newline="", encoding="utf-8") as fh:
            reader = (
                csv.DictReader(fh)
                if is_csv
                else csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            )
            rows = list(reader)
            fields = reader.fieldnames or []
        s_col = _pick(fields, smiles_column, _SMILES_NAMES, "SMILES")
        c_col = _pick(fields, caption_column, _CAPTION_NAMES, "caption")
        try:
            i_col: str | None = _pick(fields, id_column, _ID_NAMES, "id")
        except ValueError:
            if id_column is not None:
                raise
            i_col = None
        cids = [r[i_col] if i_col else str(n) for n, r in enumerate(rows)]
        nn = cls(cids, [r[s_col] for r in rows], [r[c_col] for r in rows])
        logger.info("nearest-neighbour reference: %d molecules from %s", len(nn), table)
        return nn

    def query(
        self,
        smiles_list: Sequence[Any],
        *,
        exclude_identical: bool = False,
        exclude_cids: Sequence[Iterable[str] | None] | None = None,
    ) -> list[Neighbour | None]:
        """The most similar reference molecule for each SMILES (``None`` if it does not parse).

        Args:
            smiles_list: query molecules.
            exclude_identical: skip reference molecules with the same canonical isomeric
                SMILES as the query (leave-one-out; stereoisomers are *not* excluded).
            exclude_cids: per query, reference ids to skip (e.g. the query's own id).

        Ties are broken by table order (the first reference row wins).
        """
        import numpy as np
        from rdkit import DataStructs

        if exclude_cids is not None and len(exclude_cids) != len(smiles_list):
            raise ValueError("exclude_cids needs one entry per query")
        out: list[Neighbour | None] = []
        for n, smi in enumerate(smiles_list):
            parsed = _canonical(smi) if isinstance(smi, str) else None
            if parsed is None:
                out.append(None)
                continue
            mol, canon = parsed
            sims = np.asarray(
                DataStructs.BulkTanimotoSimilarity(_fingerprint(mol), self.fingerprints)
            )
            skip_ids = set(exclude_cids[n] or ()) if exclude_cids is not None else set()
            excluded = list(self._rows_by_smiles.get(canon, ())) if exclude_identical else []
            for ref_id in skip_ids:
                excluded.extend(self._rows_by_id.get(ref_id, ()))
            if excluded:
                sims[excluded] = -1.0
            best = int(sims.argmax())  # first maximum: ties go to the earlier table row
            best_sim = float(sims[best])
            if best_sim < 0:
                out.append(None)
                continue
            out.append(
                Neighbour(float(best_sim), self.captions[best], self.cids[best], self.smiles[best])
            )
        return out
