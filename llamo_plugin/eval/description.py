"""Description task: ChEBI-20 test captions scored with the MolT5 protocol.

Predictions come from a model (``evaluate_model``), from the nearest-neighbour baseline
(``nearest_neighbour_predictions``: the caption of the most similar bundled validation
molecule) or from a file (``load_prediction_file``: MolT5's ``SMILES``/``output`` format or our
own ``smiles``/``prediction`` TSV). They are joined to the ChEBI-20 test references by SMILES,
with ``test.txt``'s doubled backslashes undoubled (:func:`~llamo_plugin.eval.common.smiles_key`).
A test row without a prediction is scored as an empty caption and counted, never dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llamo_plugin.eval.common import read_tsv, smiles_key

if TYPE_CHECKING:
    from llamo_plugin.pipeline import RowResult

logger = logging.getLogger(__name__)

TEST_FILE = Path("chebi-20") / "test.txt"
VOCAB_FILE = Path("scibert-vocab") / "vocab.txt"


@dataclass(frozen=True)
class CaptionRow:
    """One ChEBI-20 row."""

    cid: str
    smiles: str
    description: str


def load_chebi20(path: str | Path, limit: int | None = None) -> list[CaptionRow]:
    """ChEBI-20 split file rows (``CID``, ``SMILES``, ``description``), in file order."""
    rows = [CaptionRow(r["CID"], r["SMILES"], r["description"]) for r in read_tsv(path)]
    return rows[:limit] if limit else rows


def load_record_rows(path: str | Path, limit: int | None = None) -> list[CaptionRow]:
    """Rows from instruction records (JSONL with ``smiles`` and ``answer``; e.g. the held-out
    ``description_val.jsonl`` slice used for model selection)."""
    import json

    rows: list[CaptionRow] = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if line.strip():
                rec = json.loads(line)
                rows.append(CaptionRow(str(rec.get("cid", i)), rec["smiles"], rec["answer"]))
    return rows[:limit] if limit else rows


def load_prediction_file(path: str | Path) -> dict[str, str]:
    """``{smiles_key: prediction}`` from a MolT5 prediction file or our predictions TSV.

    MolT5 files have ``SMILES``/``output`` columns (a leading ``[CLS] `` is removed, as MolT5's
    script does); ours have ``smiles``/``prediction``.
    """
    rows = read_tsv(path)
    if not rows:
        return {}
    cols = {c.lower(): c for c in rows[0]}
    s_col = cols.get("smiles")
    p_col = cols.get("output") or cols.get("prediction")
    if s_col is None or p_col is None:
        raise ValueError(f"{path}: need SMILES and output/prediction columns, got {list(rows[0])}")
    out: dict[str, str] = {}
    for r in rows:
        text = r[p_col] or ""
        out[smiles_key(r[s_col])] = text[6:] if text.startswith("[CLS] ") else text
    return out


def join_predictions(
    rows: Sequence[CaptionRow], predictions: dict[str, str]
) -> tuple[list[str], list[str]]:
    """Predictions in ``rows`` order and per-row statuses (``ok`` or ``missing``)."""
    preds, statuses = [], []
    for row in rows:
        pred = predictions.get(smiles_key(row.smiles))
        preds.append(pred if pred is not None else "")
        statuses.append("ok" if pred is not None else "missing")
    return preds, statuses


def nearest_neighbour_predictions(
    rows: Sequence[CaptionRow], nn: Any, *, leave_out: str = "none"
) -> list[Any]:
    """The nearest reference molecule of every row (``None`` for an unparseable SMILES);
    ``leave_out="skeleton"`` when the rows are themselves in the reference table."""
    hits = nn.query_k([r.smiles for r in rows], 1, leave_out=leave_out)
    return [h[0] if h else None for h in hits]


def score_rows(
    rows: Sequence[CaptionRow],
    predictions: Sequence[str],
    statuses: Sequence[str],
    *,
    vocab_path: str | Path,
    nltk_data: str | Path | None = None,
    neighbours: Sequence[Any] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """MolT5 metrics plus the per-row table (with nearest-neighbour columns if given)."""
    from llamo_plugin.eval.text_metrics import caption_metrics

    metrics = caption_metrics(
        predictions, [r.description for r in rows], vocab_path=vocab_path, nltk_data=nltk_data
    )
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    metrics["statuses"] = dict(sorted(counts.items()))
    table: list[dict[str, Any]] = []
    for i, (row, pred, status) in enumerate(zip(rows, predictions, statuses, strict=True)):
        rec: dict[str, Any] = {
            "smiles": row.smiles,
            "reference": row.description,
            "prediction": pred,
            "status": status,
            "cid": row.cid,
        }
        if neighbours is not None:
            nb = neighbours[i]
            rec.update(
                {
                    "nn_cid": nb.cid if nb else "",
                    "nn_similarity": f"{nb.similarity:.4f}" if nb else "",
                    "nn_caption": nb.caption if nb else "",
                }
            )
        table.append(rec)
    if neighbours is not None:
        sims = [nb.similarity for nb in neighbours if nb is not None]
        metrics["nn_mean_similarity"] = sum(sims) / len(sims) if sims else None
    return metrics, table


def model_predictions(
    model: Any,
    rows: Sequence[CaptionRow],
    *,
    batch_size: int,
    max_new_tokens: int | None = None,
    instruction: str | None = None,
    retrieval: tuple[Any, int, str] | None = None,
    copy_bias: float = 0.0,
    copy_free: bool = False,
) -> list[RowResult]:
    """Generate a description for every row with the task's default instruction, the way
    the product does (:class:`~llamo_plugin.annotate.Annotator`): with ``retrieval`` =
    ``(index, k, leave_out)`` each prompt carries the row's ``k`` nearest annotated molecules
    and decoding adds ``copy_bias`` (``copy_free``: :attr:`DecodeConfig.copy_free`)."""
    from llamo_plugin.eval.common import run_model
    from llamo_plugin.tasks import DESCRIPTION

    text = instruction or DESCRIPTION.default_instruction
    smiles = [r.smiles for r in rows]
    instructions = [text] * len(rows)
    if retrieval is not None:
        from llamo_plugin.retrieval import with_retrieved

        index, k, leave_out = retrieval
        instructions, _ = with_retrieved(index, smiles, text, k, leave_out=leave_out)
    return run_model(
        model,
        smiles,
        instructions,
        max_new_tokens=max_new_tokens or DESCRIPTION.max_new_tokens,
        batch_size=batch_size,
        free_text=True,
        copy_bias=copy_bias,
        copy_free=copy_free,
    )
