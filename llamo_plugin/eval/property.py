"""Property task: HOMO / LUMO / gap in Hartree on the held-out QM9 split, scored by MAE.

The answer's first number (regex ``-?\\d+(\\.\\d+)?``) is the prediction. An answer without a
number (or an invalid SMILES) is **unparseable**: it is counted (``n_unparseable``) and enters
``mae_failures_as_mean``, where it is scored as the constant prediction "mean of the test
references" (i.e. no better than knowing nothing about the molecule). ``mae`` is over the parsed
answers only; both are always reported together with the counts, so nothing is silently
dropped.

The test split file (``llamo_plugin/resources/splits/qm9_property_test.csv``) is read by column
name (case-insensitive): a SMILES column (``smiles``) and, per target, one of ``homo``,
``homo_au``, ``homo_hartree`` (``lumo``..., ``gap``, ``homo_lumo_gap_au``...). A file with only
QM9 ``Index`` values is joined to ``qm9/qm9_scalar_properties.csv`` for the targets.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamo_plugin.tasks import parse_number  # the product's answer parser, scored here too

logger = logging.getLogger(__name__)

TARGETS = ("homo", "lumo", "gap")
DEFAULT_SPLIT = (
    Path(__file__).resolve().parents[1] / "resources" / "splits" / "qm9_property_test.csv"
)
QM9_FILE = Path("qm9") / "qm9_scalar_properties.csv"
_COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "homo": ("homo", "homo_au", "homo_hartree", "homo_ha"),
    "lumo": ("lumo", "lumo_au", "lumo_hartree", "lumo_ha"),
    "gap": ("gap", "homo_lumo_gap_au", "gap_au", "gap_hartree", "gap_ha", "homo_lumo_gap"),
}


@dataclass(frozen=True)
class PropertyRow:
    """A test molecule and its reference values in Hartree."""

    smiles: str
    values: dict[str, float]


def _find(columns: Sequence[str], names: Sequence[str]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def load_property_split(
    path: str | Path, *, qm9_path: str | Path | None = None, limit: int | None = None
) -> list[PropertyRow]:
    """Test molecules with HOMO/LUMO/gap (Hartree) from the split file (see module doc)."""
    columns, rows = _read_csv(Path(path))
    targets = {t: _find(columns, names) for t, names in _COLUMN_NAMES.items()}
    s_col = _find(columns, ("smiles",))
    if all(targets.values()) and s_col:
        out = [
            PropertyRow(r[s_col], {t: float(r[c]) for t, c in targets.items() if c}) for r in rows
        ]
        return out[:limit] if limit else out
    i_col = _find(columns, ("index", "qm9_index", "gdb9_index"))
    if i_col is None or qm9_path is None:
        raise ValueError(
            f"{path}: need smiles + homo/lumo/gap columns or a QM9 index column "
            f"(and the QM9 table); columns are {columns}"
        )
    wanted = [r[i_col] for r in rows]
    qcols, qrows = _read_csv(Path(qm9_path))
    qtargets = {t: _find(qcols, names) for t, names in _COLUMN_NAMES.items()}
    q_index = _find(qcols, ("index",))
    q_smiles = _find(qcols, ("smiles",))
    if q_index is None or q_smiles is None or not all(qtargets.values()):
        raise ValueError(f"{qm9_path}: unexpected columns {qcols}")
    by_index = {r[q_index]: r for r in qrows}
    missing = [i for i in wanted if i not in by_index]
    if missing:
        raise ValueError(f"{len(missing)} split indices not in {qm9_path} (e.g. {missing[0]})")
    out = [
        PropertyRow(
            by_index[i][q_smiles], {t: float(by_index[i][c]) for t, c in qtargets.items() if c}
        )
        for i in wanted
    ]
    return out[:limit] if limit else out


def average_ranks(values: Sequence[float]) -> list[float]:
    """Ranks 1..n, tied values sharing their average rank (as ``scipy.stats.rankdata``)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(references: Sequence[float], predictions: Sequence[float]) -> float | None:
    """Spearman rank correlation (Pearson of average ranks); ``None`` when either side is
    constant or there are fewer than 2 pairs (a constant prediction ranks nothing)."""
    if len(references) != len(predictions):
        raise ValueError("one prediction per reference is needed")
    if len(references) < 2:
        return None
    rx, ry = average_ranks(references), average_ranks(predictions)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def property_metrics(
    references: Sequence[float], predictions: Sequence[float | None]
) -> dict[str, Any]:
    """MAE over parsed predictions, the failure count, the failures-as-mean MAE, and whether
    the answers follow the molecule: ``n_distinct`` (distinct parsed values; a constant
    answer has 1) and ``spearman`` (rank correlation over the parsed answers)."""
    if len(references) != len(predictions):
        raise ValueError("one prediction per reference is needed")
    n = len(references)
    parsed = [
        (r, p)
        for r, p in zip(references, predictions, strict=True)
        if p is not None and math.isfinite(p)
    ]
    mean_ref = sum(references) / n if n else math.nan
    errors = [abs(p - r) for r, p in parsed]
    penalised = [
        abs(p - r) if p is not None and math.isfinite(p) else abs(mean_ref - r)
        for r, p in zip(references, predictions, strict=True)
    ]
    return {
        "n": n,
        "n_parsed": len(parsed),
        "n_unparseable": n - len(parsed),
        "valid_rate": len(parsed) / n if n else None,
        "mae": sum(errors) / len(errors) if errors else None,
        "mae_failures_as_mean": sum(penalised) / n if n else None,
        "mae_mean_baseline": sum(abs(mean_ref - r) for r in references) / n if n else None,
        "n_distinct": len({p for _, p in parsed}),
        "spearman": spearman([r for r, _ in parsed], [p for _, p in parsed]),
    }


def score_answers(
    rows: Sequence[PropertyRow], answers: dict[str, Sequence[Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics per target and averaged, and the per-(molecule, target) table.

    ``answers[target][i]`` is a :class:`~llamo_plugin.pipeline.RowResult` for row ``i``.
    """
    from llamo_plugin.tasks import format_property_value

    per_target: dict[str, Any] = {}
    table: list[dict[str, Any]] = []
    for target in TARGETS:
        if target not in answers:
            continue
        refs = [r.values[target] for r in rows]
        preds: list[float | None] = []
        for row, out in zip(rows, answers[target], strict=True):
            value = parse_number(out.text or "") if out.status == "ok" else None
            preds.append(value)
            status = (
                "invalid_smiles"
                if out.status != "ok"
                else "ok"
                if value is not None
                else "unparseable"
            )
            table.append(
                {
                    "smiles": row.smiles,
                    "reference": format_property_value(row.values[target]),
                    "prediction": (out.text or ""),
                    "status": status,
                    "target": target,
                    "parsed": "" if value is None else repr(value),
                    "stop": out.outcome,
                }
            )
        per_target[target] = property_metrics(refs, preds)
    maes = [m["mae"] for m in per_target.values() if m["mae"] is not None]
    pen = [m["mae_failures_as_mean"] for m in per_target.values()]
    metrics = {
        "unit": "Hartree",
        "targets": per_target,
        "mae_mean": sum(maes) / len(maes) if len(maes) == len(per_target) and maes else None,
        "mae_failures_as_mean_mean": sum(pen) / len(pen) if pen else None,
        "n_unparseable": sum(m["n_unparseable"] for m in per_target.values()),
        "n_answers": sum(m["n"] for m in per_target.values()),
    }
    return metrics, table


def model_answers(
    model: Any,
    rows: Sequence[PropertyRow],
    *,
    batch_size: int,
    max_new_tokens: int | None = None,
    constrained: bool = True,
    answer_choice: str | None = None,
) -> dict[str, list[Any]]:
    """Ask the model each target's default instruction for every molecule, decoding
    constrained to the answer format as the product does (``constrained=False``: free), each
    token chosen by ``answer_choice`` (default: the task's, ``TaskSpec.answer_choice``)."""
    from llamo_plugin.eval.common import run_model
    from llamo_plugin.tasks import PROPERTIES, Property

    out: dict[str, list[Any]] = {}
    for target in TARGETS:
        spec = PROPERTIES[Property(target)]
        out[target] = run_model(
            model,
            [r.smiles for r in rows],
            [spec.default_instruction] * len(rows),
            max_new_tokens=max_new_tokens or spec.max_new_tokens,
            batch_size=batch_size,
            answer_format=spec.answer_format if constrained else "",
            answer_choice=answer_choice or spec.answer_choice,
        )
    return out


#: The drug-like gap split committed by ``llamo build-data --write-splits``.
PUBCHEM_GAP_SPLIT = DEFAULT_SPLIT.with_name("pubchem_gap_test.csv")
HARTREE_EV = 27.211386245988


def load_gap_split(path: str | Path, limit: int | None = None) -> list[tuple[str, float]]:
    """``(smiles, gap_ev)`` rows of a PubChem gap split CSV."""
    _, rows = _read_csv(Path(path))
    out = [(r["smiles"], float(r["gap_ev"])) for r in rows]
    return out[:limit] if limit else out


def pubchem_gap_answers(
    model: Any,
    rows: Sequence[tuple[str, float]],
    *,
    batch_size: int,
    constrained: bool = True,
    answer_choice: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The gap of drug-like molecules asked two ways, scored by rank and error.

    ``pubchem_ev``: the PubChem-DFT instruction the model was trained on for these molecules
    (answer in eV); ``qm9_gap``: the default QM9 gap instruction (Hartree, what the property
    node asks), converted to eV. The two are at different levels of theory, so for
    ``qm9_gap`` only the ranking (``spearman``) is meaningful; its MAE is reported anyway.
    """
    from llamo_plugin.eval.common import run_model
    from llamo_plugin.tasks import PROPERTIES, PUBCHEM_GAP, Property

    smiles = [s for s, _ in rows]
    refs = [v for _, v in rows]
    gap = PROPERTIES[Property.GAP]
    queries = {
        "pubchem_ev": (
            PUBCHEM_GAP.default_instruction,
            PUBCHEM_GAP.answer_format,
            PUBCHEM_GAP.max_new_tokens,
            1.0,
        ),
        "qm9_gap": (gap.default_instruction, gap.answer_format, gap.max_new_tokens, HARTREE_EV),
    }
    metrics: dict[str, Any] = {"unit": "eV", "targets": {}}
    table: list[dict[str, Any]] = []
    for name, (instruction, fmt, cap, scale) in queries.items():
        outs = run_model(
            model,
            smiles,
            [instruction] * len(rows),
            max_new_tokens=cap,
            batch_size=batch_size,
            answer_format=fmt if constrained else "",
            answer_choice=answer_choice or gap.answer_choice,
        )
        preds: list[float | None] = []
        for (s, ref), out in zip(rows, outs, strict=True):
            value = parse_number(out.text or "") if out.status == "ok" else None
            preds.append(None if value is None else value * scale)
            table.append(
                {
                    "smiles": s,
                    "reference": f"{ref:.2f}",
                    "prediction": (out.text or ""),
                    "status": "invalid_smiles"
                    if out.status != "ok"
                    else "ok"
                    if value is not None
                    else "unparseable",
                    "target": name,
                    "parsed": "" if value is None else repr(value),
                    "stop": out.outcome,
                }
            )
        metrics["targets"][name] = property_metrics(refs, preds)
    return metrics, table
