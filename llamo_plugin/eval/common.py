"""Shared evaluation plumbing: data paths, SMILES join keys, running a model, writing results.

Every task writes ``<out>/<task>.json`` (metrics) and ``<out>/<task>_predictions.tsv``: a
tab-separated file whose first columns are ``smiles``, ``reference``, ``prediction``,
``status`` (task-specific columns follow). Fields are written without quoting; tabs and line
breaks inside a field become spaces, so the file reads back with
``csv.DictReader(f, delimiter="\\t", quoting=csv.QUOTE_NONE)`` exactly like ChEBI-20.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llamo_plugin.pipeline import RowResult

logger = logging.getLogger(__name__)

#: ``../shared/data`` relative to the repository root (users pass ``--data-dir`` instead).
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
PREDICTION_COLUMNS = ("smiles", "reference", "prediction", "status")


def smiles_key(smiles: str) -> str:
    """Join key for SMILES: stripped, doubled backslashes (ChEBI-20 ``test.txt``) undoubled."""
    return smiles.strip().replace("\\\\", "\\")


def clean_field(value: Any) -> str:
    """A TSV-safe field: ``None`` -> ``""``, tabs and line breaks -> spaces."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text.replace("\r\n", " ").replace("\t", " ").replace("\n", " ").replace("\r", " ")


def read_tsv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a tab-separated file with a header, no quote processing."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def write_results(
    out_dir: str | Path,
    task: str,
    metrics: dict[str, Any],
    rows: Sequence[dict[str, Any]],
    extra_columns: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Write ``<task>.json`` and ``<task>_predictions.tsv`` into ``out_dir``; return both."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{task}.json"
    tsv_path = out / f"{task}_predictions.tsv"
    json_path.write_text(json.dumps(metrics, indent=2, sort_keys=False) + "\n")
    columns = [*PREDICTION_COLUMNS, *extra_columns]
    with open(tsv_path, "w", encoding="utf-8", newline="") as fh:
        fh.write("\t".join(columns) + "\n")
        for row in rows:
            fh.write("\t".join(clean_field(row.get(c)) for c in columns) + "\n")
    logger.info("wrote %s and %s (%d rows)", json_path, tsv_path, len(rows))
    return json_path, tsv_path


def run_model(
    model: Any,
    smiles: Sequence[Any],
    instructions: Sequence[Any],
    *,
    max_new_tokens: int,
    batch_size: int = 64,
    log_every: int = 256,
    free_text: bool = False,
    answer_format: str = "",
    answer_choice: str = "argmax",
    copy_bias: float = 0.0,
    copy_free: bool = False,
) -> list[RowResult]:
    """Greedy answers of ``model`` for every (SMILES, instruction) pair, in order (the
    pipeline's rows: ``text``, ``status``, ``outcome``).

    With ``free_text`` (descriptions) the model's own decode settings apply (its repetition
    control); otherwise plain greedy decoding (numbers and names must not be penalised for
    repeating characters); ``answer_format`` constrains the answers to that regular
    expression (:mod:`llamo_plugin.model.answer_format`; what the product does for property
    answers), each token picked by ``answer_choice`` (``argmax`` or ``median``). Runs
    through :class:`~llamo_plugin.pipeline.Pipeline` (batched, deduplicated, same tokens as
    batch-1 decoding). Invalid SMILES give
    rows with status ``invalid_smiles`` (or ``too_large``); nothing is dropped.
    """
    from llamo_plugin.config import DecodeConfig

    if len(smiles) != len(instructions):
        raise ValueError("one instruction per SMILES is needed")
    if free_text:  # copy_bias: retrieval-augmented descriptions (backends.hf.copy_bias)
        decode = model.config.decode.replace(
            max_new_tokens=max_new_tokens, copy_bias=copy_bias, copy_free=copy_free
        )
    else:
        decode = DecodeConfig(
            max_new_tokens=max_new_tokens,
            answer_format=answer_format,
            answer_choice=answer_choice if answer_format else "argmax",
        )
    from llamo_plugin.backends.hf import HFBackend
    from llamo_plugin.pipeline import Pipeline

    pipe = Pipeline(model, backend=HFBackend(model, max_batch_size=batch_size))

    def progress(done: int, total: int) -> None:
        if done == total or done % max(log_every, 1) < pipe.chunk_size:
            logger.info("generated %d/%d unique requests", done, total)

    return pipe.run(list(smiles), list(instructions), decode=decode, progress=progress)


def model_identity(model: Any) -> dict[str, Any]:
    """Name and checksum of a model for the metrics JSON."""
    return {"name": getattr(model.config, "name", "?"), "checksum": model.checksum}


def write_reference_table(chebi_split: str | Path, out_path: str | Path) -> int:
    """Write ``cid``/``smiles``/``caption`` TSV from a ChEBI-20 split file; returns the rows.

    SMILES become RDKit canonical isomeric SMILES; unparseable rows are dropped (none in
    ChEBI-20). Used to build the bundled table from ``chebi-20/validation.txt`` only.
    """
    from llamo_plugin.retrieval import _canonical  # the bundled table's SMILES form

    with open(chebi_split, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    n = 0
    with open(out_path, "w", encoding="utf-8", newline="") as out:
        out.write("cid\tsmiles\tcaption\n")
        for row in rows:
            parsed = _canonical(row["SMILES"])
            if parsed is None:
                continue
            out.write(
                f"{clean_field(row['CID'])}\t{parsed[1]}\t{clean_field(row['description'])}\n"
            )
            n += 1
    return n
