"""IUPAC task: predicted names checked by an OPSIN round trip and by exact string match.

Sets (``--data-dir`` relative paths, see each folder's SOURCE.md):

- ``chebi20-test``: the 3,300 ChEBI-20 test molecules; reference names (for string match only)
  are the openclatura names of ``chebi-20-iupac-openclatura`` rows with ``split == test`` whose
  own OPSIN round trip was ``exact`` (rule-based IUPAC-2013 names, not PubChem's).
- ``pubchem-cid1-1000``: PubChem CIDs 1-1000 with PubChem (Lexichem) names.
- ``chemllmbench``: the 100 ``label == test`` rows of ChemLLMBench name prediction (PubChem).
- ``stout``: STOUT's 50 example pairs.

Scores per set: the share of predicted names that OPSIN parses back to exactly the input
structure (``roundtrip_exact``, statuses of :func:`llamo_plugin.chem.opsin.roundtrip_status`),
the share that give the right constitution with stereo differences
(``roundtrip_constitution`` = exact + stereo_differs), and ``string_match``: predicted name
identical to the reference (surrounding whitespace ignored, case kept: R/S, E/Z and D/L
descriptors are case-sensitive) over the rows that have a reference.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llamo_plugin.eval.common import read_tsv

if TYPE_CHECKING:
    from llamo_plugin.pipeline import RowResult

logger = logging.getLogger(__name__)

SETS = ("chebi20-test", "pubchem-cid1-1000", "chemllmbench", "stout")


@dataclass(frozen=True)
class NameRow:
    """A molecule of an IUPAC evaluation set and its reference name (if any)."""

    set: str
    id: str
    smiles: str
    reference: str | None


def _chebi20_test(data_dir: Path) -> list[NameRow]:
    names = {
        r["CID"]: r["iupac_name"]
        for r in read_tsv(data_dir / "chebi-20-iupac-openclatura" / "chebi20_iupac_openclatura.tsv")
        if r["split"] == "test" and r["opsin_roundtrip"] == "exact"
    }
    return [
        NameRow("chebi20-test", r["CID"], r["SMILES"], names.get(r["CID"]))
        for r in read_tsv(data_dir / "chebi-20" / "test.txt")
    ]


def _pubchem(data_dir: Path) -> list[NameRow]:
    with open(
        data_dir / "pubchem-iupac-cid1-1000" / "data.csv", newline="", encoding="utf-8"
    ) as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    return [NameRow("pubchem-cid1-1000", r["cid"], r["SMILES"], r["IUPAC Name"]) for r in rows]


def _chemllmbench(data_dir: Path) -> list[NameRow]:
    with open(
        data_dir / "chemllmbench-name-prediction" / "llm_test.csv", newline="", encoding="utf-8"
    ) as fh:
        rows = list(csv.DictReader(fh))
    return [
        NameRow("chemllmbench", r["CID"], r["smiles"], r["iupac"])
        for r in rows
        if r["label"] == "test"
    ]


def _stout(data_dir: Path) -> list[NameRow]:
    folder = data_dir / "stout-test"
    smiles = (folder / "SMILES_test.txt").read_text(encoding="utf-8").splitlines()
    names = (folder / "IUPAC_names_test.txt").read_text(encoding="utf-8").splitlines()
    if len(smiles) != len(names):
        raise ValueError(f"{folder}: {len(smiles)} SMILES but {len(names)} names")
    return [
        NameRow("stout", str(i), s.strip(), n.strip())
        for i, (s, n) in enumerate(zip(smiles, names, strict=True))
        if s.strip()
    ]


_LOADERS = {
    "chebi20-test": _chebi20_test,
    "pubchem-cid1-1000": _pubchem,
    "chemllmbench": _chemllmbench,
    "stout": _stout,
}


def load_sets(
    data_dir: str | Path, sets: Sequence[str] = SETS, *, limit: int | None = None
) -> list[NameRow]:
    """Rows of the chosen sets (first ``limit`` rows of each)."""
    out: list[NameRow] = []
    for name in sets:
        if name not in _LOADERS:
            raise ValueError(f"unknown IUPAC set {name!r} (known: {', '.join(SETS)})")
        rows = _LOADERS[name](Path(data_dir))
        out.extend(rows[:limit] if limit else rows)
    return out


def string_match(prediction: str | None, reference: str | None) -> bool | None:
    """Exact name match (whitespace at the ends ignored); ``None`` without a reference."""
    if reference is None or not reference.strip():
        return None
    return (prediction or "").strip() == reference.strip()


def _set_metrics(statuses: Sequence[str], matches: Sequence[bool | None]) -> dict[str, Any]:
    n = len(statuses)
    counts = {s: statuses.count(s) for s in dict.fromkeys(statuses)}
    judged = [m for m in matches if m is not None]
    exact = counts.get("exact", 0)
    return {
        "n": n,
        "roundtrip_exact": exact / n if n else None,
        "roundtrip_constitution": (exact + counts.get("stereo_differs", 0)) / n if n else None,
        "statuses": dict(sorted(counts.items())),
        "n_with_reference": len(judged),
        "string_match": sum(judged) / len(judged) if judged else None,
    }


def score_names(
    rows: Sequence[NameRow], outputs: Sequence[RowResult], *, node: bool = True
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Round-trip and string-match metrics per set (and pooled), plus the per-row table.

    The model's names alone are scored as they are; with ``node``, also what the IUPAC node
    outputs (:func:`~llamo_plugin.chem.naming.verify_names`: the model's name where it
    round-trips exactly, else openclatura's where that does), as ``node_roundtrip_exact``
    and ``node_sources`` (rows named by the model / by openclatura / by neither).
    """
    from llamo_plugin.chem.naming import verify_names
    from llamo_plugin.chem.opsin import roundtrip_status

    names = [(o.text or "") for o in outputs]
    statuses = roundtrip_status(names, [r.smiles for r in rows])
    statuses = [
        "invalid_smiles" if o.status != "ok" else s for o, s in zip(outputs, statuses, strict=True)
    ]
    matches = [
        string_match((o.text or ""), r.reference) for o, r in zip(outputs, rows, strict=True)
    ]
    sources: list[str] = ["none"] * len(rows)
    node_names = [""] * len(rows)
    if node:
        ok = [i for i, o in enumerate(outputs) if o.status == "ok"]
        verified = verify_names(
            [names[i] for i in ok],
            [outputs[i].canonical_smiles or rows[i].smiles for i in ok],  # as annotate does
            statuses=[statuses[i] for i in ok],
        )
        for i, v in zip(ok, verified, strict=True):
            if v.status == "exact":
                sources[i], node_names[i] = v.source or "none", v.name or ""

    def metrics(idx: list[int]) -> dict[str, Any]:
        out = _set_metrics([statuses[i] for i in idx], [matches[i] for i in idx])
        if node:
            picked = [sources[i] for i in idx]
            exact = sum(s != "none" for s in picked)
            out["node_roundtrip_exact"] = exact / len(idx) if idx else None
            out["node_sources"] = {k: picked.count(k) for k in ("model", "openclatura", "none")}
        return out

    per_set: dict[str, Any] = {}
    for name in dict.fromkeys(r.set for r in rows):
        per_set[name] = metrics([i for i, r in enumerate(rows) if r.set == name])
    table = [
        {
            "smiles": r.smiles,
            "reference": r.reference or "",
            "prediction": (o.text or ""),
            "status": s,
            "set": r.set,
            "id": r.id,
            "string_match": "" if m is None else str(int(m)),
            "stop": o.outcome,
            **({"node_name": nn, "node_source": src} if node else {}),
        }
        for r, o, s, m, nn, src in zip(
            rows, outputs, statuses, matches, node_names, sources, strict=True
        )
    ]
    return {"sets": per_set, "all": metrics(list(range(len(rows))))}, table


def model_names(
    model: Any, rows: Sequence[NameRow], *, batch_size: int, max_new_tokens: int | None = None
) -> list[RowResult]:
    """Ask the model for the IUPAC name of every row (default instruction)."""
    from llamo_plugin.eval.common import run_model
    from llamo_plugin.tasks import IUPAC

    return run_model(
        model,
        [r.smiles for r in rows],
        [IUPAC.default_instruction] * len(rows),
        max_new_tokens=max_new_tokens or IUPAC.max_new_tokens,
        batch_size=batch_size,
    )
