"""``llamo evaluate --task {description,property,pubchem-gap,iupac,qa} --out DIR``: benchmark a
model.

Writes ``DIR/<task>.json`` (the metrics, also printed on stdout) and
``DIR/<task>_predictions.tsv`` (``smiles``, ``reference``, ``prediction``, ``status`` and
task-specific columns) so anyone can rescore the predictions with their own tools.

The description task can also score the nearest-neighbour baseline
(``--baseline nearest-neighbour``: the caption of the most similar bundled ChEBI-20 validation
molecule) or an existing prediction file (``--predictions FILE``, e.g. MolT5's released
``*-smiles2caption.txt``), with the same scorer.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TASKS = ("description", "property", "pubchem-gap", "iupac", "qa")
BASELINES = ("nearest-neighbour",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from llamo_plugin.eval.common import DEFAULT_DATA_DIR
    from llamo_plugin.eval.iupac import SETS
    from llamo_plugin.eval.property import DEFAULT_SPLIT, PUBCHEM_GAP_SPLIT

    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument(
        "--out", required=True, type=Path, help="folder for <task>.json and <task>_predictions.tsv"
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="model directory (default: the embedded model)"
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="only the first N test rows (per set for iupac)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=256,
        help="rows decoded together (the hf backend's decode batch)",
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=None, help="override the task's decoding cap"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="open data sets folder (default: ../shared/data beside the repo)",
    )
    parser.add_argument(
        "--baseline",
        choices=BASELINES,
        default=None,
        help="description: score the nearest-neighbour caption baseline",
    )
    parser.add_argument(
        "--references",
        type=Path,
        default=None,
        help="description: score against these instruction records (JSONL: "
        "smiles, answer), e.g. data/build/description_val.jsonl, instead of "
        "the ChEBI-20 test split",
    )
    parser.add_argument(
        "--predictions",
        type=Path,
        default=None,
        help="description: rescore a prediction file (SMILES + output columns)",
    )
    parser.add_argument(
        "--reference-table",
        type=Path,
        default=None,
        help="annotated table for nearest-neighbour look-ups (default: bundled "
        "ChEBI-20 validation set)",
    )
    parser.add_argument(
        "--retrieval",
        choices=["auto", "on", "off"],
        default="auto",
        help="description: retrieval-augmented prompts (auto: the model's default). Rows "
        "never retrieve another form of themselves when --references is given (leave-one-out "
        "by first InChIKey block); on the test split the reference table holds none",
    )
    parser.add_argument(
        "--neighbours", type=int, default=0, help="description: neighbours (0: the model's)"
    )
    parser.add_argument(
        "--copy-bias",
        type=float,
        default=None,
        help="description with retrieval: override the model's copy bias (tuning)",
    )
    parser.add_argument(
        "--copy-free",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="description with retrieval: override the model's copy_free (copied tokens "
        "exempt from the repetition rules, each prompt position copied once)",
    )
    parser.add_argument(
        "--vocab",
        type=Path,
        default=None,
        help="SciBERT vocab.txt (default: DATA_DIR/scibert-vocab/vocab.txt)",
    )
    parser.add_argument(
        "--nltk-data",
        type=Path,
        default=None,
        help="NLTK data folder with WordNet (default: $LLAMO_NLTK_DATA or "
        "~/.cache/llamo-plugin/nltk_data)",
    )
    parser.add_argument(
        "--property-test",
        type=Path,
        default=DEFAULT_SPLIT,
        help="property: held-out QM9 split CSV (default: the bundled split)",
    )
    parser.add_argument(
        "--pubchem-gap-test",
        type=Path,
        default=PUBCHEM_GAP_SPLIT,
        help="pubchem-gap: drug-like molecules with a DFT gap in eV (smiles, gap_ev; default: "
        "the bundled held-out split of pubchem-gap-iqspr)",
    )
    parser.add_argument(
        "--unconstrained",
        action="store_true",
        help="property, pubchem-gap: decode freely instead of constrained to the answer format",
    )
    parser.add_argument(
        "--answer-choice",
        choices=("argmax", "median"),
        default=None,
        help="property, pubchem-gap: greedy digits (argmax) or the median of the model's "
        "distribution over the answer's number (default: the task's setting)",
    )
    parser.add_argument(
        "--iupac-sets",
        nargs="+",
        choices=SETS,
        default=list(SETS),
        metavar="SET",
        help=f"iupac: sets to evaluate, of {', '.join(SETS)} (default: all)",
    )
    parser.add_argument(
        "--qa-file",
        type=Path,
        default=None,
        help="qa: held-out questions (JSONL/TSV/CSV: smiles, question, answer, qtype)",
    )


class UsageError(Exception):
    """A missing input or an invalid combination of options (exit code 2)."""


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise UsageError(f"{what} not found: {path}")
    return path


def _load_model(args: argparse.Namespace) -> Any:
    from llamo_plugin.registry import load_model_or_default

    return load_model_or_default(args.model)


def _description(
    args: argparse.Namespace,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    from llamo_plugin.eval import description as d
    from llamo_plugin.eval.common import model_identity
    from llamo_plugin.eval.wordnet import load_wordnet
    from llamo_plugin.retrieval import NearestNeighbours

    vocab = _need(args.vocab or args.data_dir / d.VOCAB_FILE, "SciBERT vocabulary")
    load_wordnet(args.nltk_data)  # fail before generating, not after
    if args.references is not None:  # e.g. the held-out validation slice, for model selection
        test_path = _need(args.references, "reference records")
        rows = d.load_record_rows(test_path, args.limit)
    else:
        test_path = _need(args.data_dir / d.TEST_FILE, "ChEBI-20 test file")
        rows = d.load_chebi20(test_path, args.limit)
    nn = NearestNeighbours.from_table(args.reference_table)
    # the validation slice is in the bundled table: leave each row (and its other forms) out
    leave_out = "skeleton" if args.references is not None else "none"
    neighbours = d.nearest_neighbour_predictions(rows, nn, leave_out=leave_out)
    meta: dict[str, Any]
    if args.predictions is not None:
        preds, statuses = d.join_predictions(
            rows, d.load_prediction_file(_need(args.predictions, "prediction file"))
        )
        meta = {"source": "predictions", "predictions": str(args.predictions)}
    elif args.baseline == "nearest-neighbour":
        preds = [nb.caption if nb else "" for nb in neighbours]
        statuses = ["ok" if nb else "invalid_smiles" for nb in neighbours]
        meta = {
            "source": "baseline",
            "baseline": "nearest-neighbour",
            "fingerprint": "Morgan r=2, 2048 bits, Tanimoto",
        }
    else:
        model = _load_model(args)
        settings = model.config.retrieval
        on = args.retrieval == "on" or (args.retrieval == "auto" and settings.default)
        k = args.neighbours or settings.neighbours
        copy_bias = settings.copy_bias if args.copy_bias is None else args.copy_bias
        outputs = d.model_predictions(
            model,
            rows,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            retrieval=(nn, k, leave_out) if on else None,
            copy_bias=copy_bias if on else 0.0,
            copy_free=settings.copy_free if args.copy_free is None else args.copy_free,
        )
        preds = [(o.text or "") for o in outputs]
        statuses = ["ok" if o.outcome == "eos" else o.outcome for o in outputs]
        meta = {"source": "model", "model": model_identity(model)}
        meta["retrieval"] = (
            {
                "neighbours": k,
                "copy_bias": copy_bias,
                "leave_out": leave_out,
                "copy_free": settings.copy_free if args.copy_free is None else args.copy_free,
            }
            if on
            else "off"
        )
    meta["reference_table"] = str(args.reference_table or "bundled chebi20_validation.tsv")
    metrics, table = d.score_rows(
        rows, preds, statuses, vocab_path=vocab, nltk_data=args.nltk_data, neighbours=neighbours
    )
    meta.update(
        {
            "data": str(test_path),
            "protocol": "MolT5: SciBERT-uncased WordPiece (max 512), NLTK corpus BLEU, "
            "NLTK METEOR (WordNet 3.0), rouge-score F1 on raw strings",
        }
    )
    return {**meta, **metrics}, table, ["cid", "nn_cid", "nn_similarity", "nn_caption"]


def _property(args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    from llamo_plugin.eval import property as p
    from llamo_plugin.eval.common import model_identity

    split = _need(args.property_test, "property test split (qm9_property_test.csv)")
    rows = p.load_property_split(split, qm9_path=args.data_dir / p.QM9_FILE, limit=args.limit)
    model = _load_model(args)
    answers = p.model_answers(
        model,
        rows,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        constrained=not args.unconstrained,
        answer_choice=args.answer_choice,
    )
    metrics, table = p.score_answers(rows, answers)
    meta = {
        "source": "model",
        "model": model_identity(model),
        "data": str(split),
        "decoding": "free" if args.unconstrained else "constrained to the answer format",
        "answer_choice": args.answer_choice or "task default",
        "parse": "first match of -?\\d+(\\.\\d+)?; unparseable answers counted",
    }
    return {**meta, **metrics}, table, ["target", "parsed", "stop"]


def _pubchem_gap(
    args: argparse.Namespace,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    from llamo_plugin.eval import property as p
    from llamo_plugin.eval.common import model_identity

    split = _need(args.pubchem_gap_test, "PubChem gap split (pubchem_gap_test.csv)")
    rows = p.load_gap_split(split, limit=args.limit)
    model = _load_model(args)
    metrics, table = p.pubchem_gap_answers(
        model,
        rows,
        batch_size=args.batch_size,
        constrained=not args.unconstrained,
        answer_choice=args.answer_choice,
    )
    meta = {
        "source": "model",
        "model": model_identity(model),
        "data": str(split),
        "decoding": "free" if args.unconstrained else "constrained to the answer format",
        "answer_choice": args.answer_choice or "task default",
        "note": "pubchem_ev: the PubChem-DFT instruction (eV); qm9_gap: the default QM9 gap "
        "instruction (Hartree x 27.2114), another level of theory: read its spearman",
    }
    return {**meta, **metrics}, table, ["target", "parsed", "stop"]


def _iupac(args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    from llamo_plugin.chem.opsin import java_available
    from llamo_plugin.eval import iupac as i
    from llamo_plugin.eval.common import model_identity

    if not java_available():
        raise UsageError("the IUPAC evaluation needs Java (OPSIN); install Java 17")
    _need(args.data_dir, "data folder")
    try:
        rows = i.load_sets(args.data_dir, args.iupac_sets, limit=args.limit)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    model = _load_model(args)
    outputs = i.model_names(
        model, rows, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens
    )
    metrics, table = i.score_names(rows, outputs)
    meta = {
        "source": "model",
        "model": model_identity(model),
        "data": str(args.data_dir),
        "roundtrip": "OPSIN 2.9.0 name -> structure, compared by RDKit canonical isomeric "
        "SMILES / InChIKey",
        "node": "node_*: what the IUPAC node outputs, the model's name where it round-trips "
        "exactly, else openclatura's where that does",
    }
    extra = ["set", "id", "string_match", "stop", "node_name", "node_source"]
    return {**meta, **metrics}, table, extra


def _qa(args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    from llamo_plugin.eval import qa
    from llamo_plugin.eval.common import model_identity

    if args.qa_file is None:
        raise UsageError("--task qa needs --qa-file (held-out questions)")
    records = qa.load_records(_need(args.qa_file, "Q&A file"), args.limit)
    model = _load_model(args)
    outputs = qa.model_answers(
        model, records, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens
    )
    metrics, table = qa.score_answers(records, outputs)
    meta = {
        "source": "model",
        "model": model_identity(model),
        "data": str(args.qa_file),
        "match": "exact after case folding, whitespace collapsing, trailing '.' removal",
    }
    return {**meta, **metrics}, table, ["qtype", "question", "stop"]


_RUNNERS = {
    "description": _description,
    "property": _property,
    "pubchem-gap": _pubchem_gap,
    "iupac": _iupac,
    "qa": _qa,
}


def run(args: argparse.Namespace) -> int:
    from llamo_plugin.chem.opsin import OpsinUnavailableError
    from llamo_plugin.errors import CheckpointError
    from llamo_plugin.eval.common import write_results
    from llamo_plugin.eval.wordnet import WordNetUnavailableError

    if args.task != "description" and (args.baseline or args.predictions):
        logger.error("--baseline and --predictions apply to --task description only")
        return 2
    if args.baseline and args.predictions:
        logger.error("give either --baseline or --predictions, not both")
        return 2
    if args.limit is not None and args.limit < 1:
        logger.error("--limit must be >= 1")
        return 2
    start = time.monotonic()
    try:
        metrics, table, extra = _RUNNERS[args.task](args)
    except (
        UsageError,
        WordNetUnavailableError,
        OpsinUnavailableError,
        CheckpointError,
        ValueError,
    ) as exc:
        logger.error("%s", exc)
        return 2
    metrics = {
        "task": args.task,
        "limit": args.limit,
        **metrics,
        "seconds": round(time.monotonic() - start, 1),
    }
    write_results(args.out, args.task, metrics, table, extra)
    sys.stdout.write(json.dumps(metrics, indent=2) + "\n")
    return 0
