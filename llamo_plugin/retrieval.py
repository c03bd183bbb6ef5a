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
import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

LeaveOut = Literal["none", "identical", "skeleton"]

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


def _skeleton(canonical_smiles: str) -> str:
    """First InChIKey block (connectivity; ignores stereo, isotopes and protonation), or the
    SMILES itself where InChI fails."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(canonical_smiles)
    try:
        key = Chem.MolToInchiKey(mol) if mol is not None else ""
    except Exception:  # InChI can fail on exotic valences: fall back to the SMILES
        key = ""
    return key[:14] if key else f"SMILES:{canonical_smiles}"


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

    @functools.cached_property
    def checksum(self) -> str:
        """sha256 of the table's content (ids, canonical SMILES, captions): what the answer
        cache keys retrieval-augmented answers by."""
        h = hashlib.sha256()
        for cid, smi, cap in zip(self.cids, self.smiles, self.captions, strict=True):
            h.update(f"{cid}\t{smi}\t{cap}\n".encode())
        return h.hexdigest()

    @functools.cached_property
    def _rows_by_skeleton(self) -> dict[str, list[int]]:
        """Rows per first InChIKey block (computed on first leave-one-out query)."""
        out: dict[str, list[int]] = {}
        for i, smi in enumerate(self.smiles):
            out.setdefault(_skeleton(smi), []).append(i)
        return out

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
                SMILES as the query (stereoisomers are *not* excluded).
            exclude_cids: per query, reference ids to skip (e.g. the query's own id).

        Ties are broken by table order (the first reference row wins).
        """
        hits = self.query_k(
            smiles_list,
            k=1,
            leave_out="identical" if exclude_identical else "none",
            exclude_cids=exclude_cids,
        )
        return [h[0] if h else None for h in hits]

    def query_k(
        self,
        smiles_list: Sequence[Any],
        k: int,
        *,
        leave_out: LeaveOut = "none",
        exclude_cids: Sequence[Iterable[str] | None] | None = None,
    ) -> list[list[Neighbour] | None]:
        """The ``k`` most similar reference molecules per SMILES, most similar first
        (``None`` for a query that does not parse; fewer than ``k`` when the table is small).

        Args:
            leave_out: ``"identical"`` skips references with the query's canonical isomeric
                SMILES; ``"skeleton"`` (leave-one-out training and validation) also skips its
                stereoisomers, isotopologues and other protonation states (same first
                InChIKey block), so a molecule never retrieves another form of itself.
            exclude_cids: per query, reference ids to skip.

        Ties are broken by table order (the earlier reference row wins).
        """
        import numpy as np
        from rdkit import DataStructs

        if k < 1:
            raise ValueError("k must be >= 1")
        if leave_out not in ("none", "identical", "skeleton"):
            raise ValueError(f"leave_out must be none, identical or skeleton, got {leave_out!r}")
        if exclude_cids is not None and len(exclude_cids) != len(smiles_list):
            raise ValueError("exclude_cids needs one entry per query")
        out: list[list[Neighbour] | None] = []
        for n, smi in enumerate(smiles_list):
            parsed = _canonical(smi) if isinstance(smi, str) else None
            if parsed is None:
                out.append(None)
                continue
            mol, canon = parsed
            sims = np.asarray(
                DataStructs.BulkTanimotoSimilarity(_fingerprint(mol), self.fingerprints)
            )
            excluded: list[int] = []
            if leave_out == "identical":
                excluded.extend(self._rows_by_smiles.get(canon, ()))
            elif leave_out == "skeleton":
                excluded.extend(self._rows_by_smiles.get(canon, ()))
                excluded.extend(self._rows_by_skeleton.get(_skeleton(canon), ()))
            if exclude_cids is not None:
                for ref_id in set(exclude_cids[n] or ()):
                    excluded.extend(self._rows_by_id.get(ref_id, ()))
            if excluded:
                sims[excluded] = -1.0
            # stable sort on -similarity: ties keep table order
            order = np.argsort(-sims, kind="stable")[:k]
            out.append(
                [
                    Neighbour(float(sims[i]), self.captions[i], self.cids[i], self.smiles[i])
                    for i in order
                    if sims[i] >= 0
                ]
            )
        return out


def with_retrieved(
    index: NearestNeighbours,
    smiles: Sequence[Any],
    instruction: str,
    k: int,
    *,
    leave_out: LeaveOut = "none",
) -> tuple[list[str], list[list[Neighbour] | None]]:
    """Per row, ``instruction`` preceded by its ``k`` nearest annotated molecules (the prompt
    the retrieval-augmented model was trained on), and the neighbours used (``None`` for a
    SMILES that does not parse; its instruction is left as it is)."""
    from llamo_plugin.prompt.neighbours import NeighbourText, with_neighbours

    hits = index.query_k(smiles, k, leave_out=leave_out)
    instructions = [
        with_neighbours(instruction, [NeighbourText(n.smiles, n.similarity, n.caption) for n in h])
        if h
        else instruction
        for h in hits
    ]
    return instructions, hits


def neighbours_label(hits: Sequence[Neighbour] | None) -> str | None:
    """What a row's ``description_neighbours`` cell says: ``"<id> (0.82); <id> (0.75)"``."""
    if not hits:
        return None
    return "; ".join(f"{n.cid} ({n.similarity:.2f})" for n in hits)
