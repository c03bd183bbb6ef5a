"""Q&A task: exact-match accuracy per question type on held-out molecules.

Records come from a file (``--qa-file``): JSONL (one object per line) or a TSV/CSV with a
header. Fields (case-insensitive): ``smiles``, ``question`` (or ``instruction``), ``answer``
and ``qtype`` (or ``question_type``, else ``task``; ``"all"`` if none). An answer is correct
when it equals the reference after normalisation: Unicode case folding, runs of whitespace
collapsed to one space, ends stripped, and one trailing full stop removed.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llamo_plugin.pipeline import RowResult


logger = logging.getLogger(__name__)

_QUESTION_NAMES = ("question", "instruction")
_QTYPE_NAMES = ("qtype", "question_type", "task")


@dataclass(frozen=True)
class QARecord:
    """One held-out question about a molecule."""

    smiles: str
    question: Any  # a string, or a list of chat turns as in the training records
    answer: str
    qtype: str


def normalise_answer(text: str | None) -> str:
    """Case-folded, whitespace-collapsed, without one trailing full stop."""
    norm = " ".join((text or "").casefold().split())
    return norm[:-1].rstrip() if norm.endswith(".") else norm


def is_correct(prediction: str | None, answer: str) -> bool:
    """Exact match after :func:`normalise_answer`."""
    return normalise_answer(prediction) == normalise_answer(answer)


def _record(raw: dict[str, Any], where: str) -> QARecord:
    lower = {str(k).lower(): v for k, v in raw.items()}

    def first(names: Sequence[str]) -> Any:
        return next((lower[n] for n in names if lower.get(n) not in (None, "")), None)

    smiles, question, answer = lower.get("smiles"), first(_QUESTION_NAMES), lower.get("answer")
    if smiles is None or question is None or answer is None:
        raise ValueError(f"{where}: need smiles, question and answer fields, got {list(raw)}")
    return QARecord(str(smiles), question, str(answer), str(first(_QTYPE_NAMES) or "all"))


def load_records(path: str | Path, limit: int | None = None) -> list[QARecord]:
    """Q&A records from JSONL, TSV or CSV (see module docstring)."""
    p = Path(path)
    records: list[QARecord] = []
    if p.suffix.lower() in {".jsonl", ".json"}:
        with open(p, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    records.append(_record(json.loads(line), f"{p}:{n}"))
    else:
        with open(p, newline="", encoding="utf-8") as fh:
            reader = (
                csv.DictReader(fh)
                if p.suffix.lower() == ".csv"
                else csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            )
            records = [_record(r, f"{p}:{n}") for n, r in enumerate(reader, 2)]
    return records[:limit] if limit else records


def score_answers(
    records: Sequence[QARecord], outputs: Sequence[RowResult]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Accuracy overall (micro), per question type and their macro average; per-row table."""
    per_type: dict[str, list[bool]] = {}
    table: list[dict[str, Any]] = []
    for rec, out in zip(records, outputs, strict=True):
        ok = out.status == "ok" and is_correct((out.text or ""), rec.answer)
        per_type.setdefault(rec.qtype, []).append(ok)
        status = "invalid_smiles" if out.status != "ok" else ("correct" if ok else "wrong")
        table.append(
            {
                "smiles": rec.smiles,
                "reference": rec.answer,
                "prediction": (out.text or ""),
                "status": status,
                "qtype": rec.qtype,
                "question": (
                    rec.question if isinstance(rec.question, str) else json.dumps(rec.question)
                ),
                "stop": out.outcome,
            }
        )
    n = len(records)
    types = {t: {"n": len(v), "accuracy": sum(v) / len(v)} for t, v in sorted(per_type.items())}
    metrics = {
        "n": n,
        "accuracy": sum(sum(v) for v in per_type.values()) / n if n else None,
        "accuracy_macro": (
            sum(t["accuracy"] for t in types.values()) / len(types) if types else None
        ),
        "per_type": types,
        "n_invalid_smiles": sum(r["status"] == "invalid_smiles" for r in table),
    }
    return metrics, table


def model_answers(
    model: Any, records: Sequence[QARecord], *, batch_size: int, max_new_tokens: int | None = None
) -> list[RowResult]:
    """Ask every question of every record."""
    from llamo_plugin.eval.common import run_model
    from llamo_plugin.tasks import QA_MAX_NEW_TOKENS

    return run_model(
        model,
        [r.smiles for r in records],
        [r.question for r in records],
        max_new_tokens=max_new_tokens or QA_MAX_NEW_TOKENS,
        batch_size=batch_size,
    )
