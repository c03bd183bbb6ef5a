"""Decoded validation during training (checkpoint selection): properties, descriptions, Q&A.

The teacher-forced loss of a number says little about the number the model will *write*
(v0's HOMO loss fell while its greedy answer stayed the training mean). So the property
read-out stage is selected on what users get: greedy, format-constrained answers to each
target's default instruction on held-out (``val``) molecules, scored as in ``llamo evaluate
--task property``. See :class:`~llamo_plugin.train.config.DecodedEvalConfig`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamo_plugin.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TargetQuery:
    """How a property target is asked and answered: default instruction, answer format
    (a regex; decoding is constrained to it) and a token cap."""

    instruction: str
    answer_format: str
    max_new_tokens: int


def target_query(qtype: str) -> TargetQuery:
    """The query of a property ``qtype`` (QM9 ``homo``/``lumo``/``gap`` or the PubChem gap)."""
    from llamo_plugin.tasks import PROPERTIES, Property
    from llamo_plugin.train import build_pubchem_gap

    if qtype == build_pubchem_gap.QTYPE:
        return TargetQuery(build_pubchem_gap.INSTRUCTIONS[0], build_pubchem_gap.ANSWER_FORMAT, 8)
    spec = PROPERTIES[Property(qtype)]
    return TargetQuery(spec.default_instruction, spec.answer_format, spec.max_new_tokens)


def load_val_targets(path: Path, molecules: int) -> dict[str, list[tuple[str, float]]]:
    """``{qtype: [(smiles, reference), ...]}`` for the first ``molecules`` distinct molecules
    of the ``val`` records of ``path`` (file order, so the same rows every time)."""
    chosen: list[str] = []
    out: dict[str, list[tuple[str, float]]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = json.loads(line)
            if rec.get("split") != "val" or rec.get("task") != "property":
                continue
            smiles = rec["smiles"]
            if smiles not in chosen:
                if len(chosen) >= molecules:
                    continue
                chosen.append(smiles)
            out.setdefault(rec["qtype"], []).append((smiles, float(rec["answer"])))
    return out


def greedy_answers(
    model: Any, queries: list[tuple[str, Any]], decode: Any, batch_size: int = 64
) -> list[str | None]:
    """Greedy answers to ``(smiles, instruction)`` queries with ``decode`` (a
    :class:`~llamo_plugin.config.DecodeConfig`); ``None`` for an invalid SMILES."""
    import torch

    from llamo_plugin.backends.hf import generate_batch
    from llamo_plugin.errors import InvalidSmilesError

    out: list[str | None] = [None] * len(queries)
    ready = []
    for i, (smiles, instruction) in enumerate(queries):
        try:
            ready.append((i, model.prepare(smiles, instruction)))
        except InvalidSmilesError:
            continue
    with torch.inference_mode():
        for start in range(0, len(ready), batch_size):
            chunk = ready[start : start + batch_size]
            graph_tokens = model.encode_graphs([p.graph for _, p in chunk])
            gens = generate_batch(model, [p.prompt for _, p in chunk], graph_tokens, decode)
            for (i, _), gen in zip(chunk, gens, strict=True):
                out[i] = gen.text
    return out


def decode_answers(
    model: Any, smiles: list[str], query: TargetQuery, batch_size: int = 64
) -> list[str | None]:
    """Greedy, format-constrained answers (``None`` for an invalid SMILES)."""
    from llamo_plugin.config import DecodeConfig

    decode = DecodeConfig(max_new_tokens=query.max_new_tokens, answer_format=query.answer_format)
    return greedy_answers(model, [(s, query.instruction) for s in smiles], decode, batch_size)


def score_targets(
    references: dict[str, list[float]], answers: dict[str, list[str | None]]
) -> dict[str, Any]:
    """Per-target metrics (:func:`~llamo_plugin.eval.property.property_metrics`) and the
    selection ``score``: the mean over targets of MAE (unparseable answers as the mean
    predictor) divided by the mean predictor's MAE. Lower is better; 1.0 = the mean."""
    from llamo_plugin.eval.property import parse_number, property_metrics

    targets: dict[str, Any] = {}
    ratios = []
    for qtype, refs in references.items():
        preds = [parse_number(a) for a in answers[qtype]]
        m = property_metrics(refs, preds)
        targets[qtype] = {
            k: (round(v, 5) if isinstance(v, float) else v)
            for k, v in m.items()
            if k
            in (
                "n",
                "n_unparseable",
                "mae",
                "mae_failures_as_mean",
                "mae_mean_baseline",
                "n_distinct",
                "spearman",
            )
        }
        base = m["mae_mean_baseline"] or 1.0
        ratios.append(m["mae_failures_as_mean"] / base)
    return {"score": sum(ratios) / len(ratios) if ratios else float("inf"), "targets": targets}


class DecodedPropertyEval:
    """The decoded validation of one stage (its files are read once)."""

    def __init__(self, config: Any, data_root: Path) -> None:
        self.config = config
        self.rows: dict[str, list[tuple[str, float]]] = {}
        for name in config.files:
            path = Path(name) if Path(name).is_absolute() else data_root / name
            for qtype, rows in load_val_targets(path, config.molecules).items():
                self.rows.setdefault(qtype, []).extend(rows)
        logger.info(
            "decoded validation: %s",
            ", ".join(f"{q} {len(r)}" for q, r in self.rows.items()),
        )

    def run(self, model: Any) -> dict[str, Any]:
        """Decode and score every target (the model should be in eval mode)."""
        t0 = time.time()
        answers: dict[str, list[str | None]] = {}
        for qtype, rows in self.rows.items():
            answers[qtype] = decode_answers(
                model, [s for s, _ in rows], target_query(qtype), self.config.batch_size
            )
        result = score_targets({q: [v for _, v in r] for q, r in self.rows.items()}, answers)
        result["decode_s"] = round(time.time() - t0, 1)
        return result


def _val_rows(
    files: tuple[str, ...], data_root: Path, limit: int, *, spread: bool = False
) -> list[tuple[str, Any, str]]:
    """``(smiles, instruction, answer)`` of ``limit`` ``val`` records of ``files``: the first
    ones, or with ``spread`` evenly spaced ones (every pool of a file represented)."""
    rows: list[tuple[str, Any, str]] = []
    for name in files:
        path = Path(name) if Path(name).is_absolute() else data_root / name
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if len(rows) >= limit and not spread:
                    break
                rec = json.loads(line) if line.strip() else None
                if rec and rec.get("split") == "val":
                    rows.append((rec["smiles"], rec["instruction"], rec["answer"]))
    if not rows:
        raise ConfigError(f"decoded_eval: no val records in {', '.join(files)}")
    if spread and len(rows) > limit:
        return [rows[i * len(rows) // limit] for i in range(limit)]
    return rows[:limit]


def _greedy_texts(
    model: Any, rows: list[tuple[str, Any, str]], max_new_tokens: int, batch_size: int
) -> list[str]:
    """The model's answers (its own decoding settings, ``max_new_tokens`` cap) to ``rows``;
    an invalid SMILES is answered with nothing (scored as wrong)."""
    decode = model.config.decode.replace(max_new_tokens=max_new_tokens)
    queries = [(smiles, instruction) for smiles, instruction, _ in rows]
    return [t or "" for t in greedy_answers(model, queries, decode, batch_size)]


class DecodedDescriptionEval:
    """Decoded validation of descriptions: greedy answers (the model's own decoding settings)
    to the first ``description_rows`` ``val`` records of ``description_files`` (their
    instructions as written, e.g. with retrieved neighbours), scored by corpus BLEU-4 (SciBERT
    tokens, as ``llamo evaluate``). Score: ``1 - BLEU-4`` (lower is better)."""

    def __init__(self, config: Any, data_root: Path, vocab_path: Path) -> None:
        from llamo_plugin.eval.text_metrics import load_scibert_tokenizer

        self.config = config
        self.rows = _val_rows(config.description_files, data_root, config.description_rows)
        self.tokenizer = load_scibert_tokenizer(vocab_path)
        logger.info("decoded description validation: %d rows", len(self.rows))

    def run(self, model: Any) -> dict[str, Any]:
        from llamo_plugin.eval.text_metrics import bleu_scores
        from llamo_plugin.tasks import DESCRIPTION

        t0 = time.time()
        texts = _greedy_texts(model, self.rows, DESCRIPTION.max_new_tokens, self.config.batch_size)
        refs = [self.tokenizer.tokenize(r) for _, _, r in self.rows]
        hyps = [self.tokenizer.tokenize(t) for t in texts]
        bleu = bleu_scores(refs, hyps)
        return {
            "score": 1.0 - bleu["bleu4"],
            "description": {"n": len(texts), **{k: round(v, 4) for k, v in bleu.items()}},
            "decode_s": round(time.time() - t0, 1),
        }


class DecodedQaEval:
    """Decoded validation of Q&A: greedy answers to ``qa_rows`` evenly spaced ``val`` records
    of ``qa_files`` (so QM9 and ChEBI-20 molecules both count), exact match as ``llamo
    evaluate --task qa``. Score: ``1 - accuracy``."""

    def __init__(self, config: Any, data_root: Path) -> None:
        self.config = config
        self.rows = _val_rows(config.qa_files, data_root, config.qa_rows, spread=True)
        logger.info("decoded Q&A validation: %d rows", len(self.rows))

    def run(self, model: Any) -> dict[str, Any]:
        from llamo_plugin.eval.qa import is_correct
        from llamo_plugin.tasks import QA_MAX_NEW_TOKENS

        t0 = time.time()
        texts = _greedy_texts(model, self.rows, QA_MAX_NEW_TOKENS, self.config.batch_size)
        correct = sum(is_correct(t, a) for t, (_, _, a) in zip(texts, self.rows, strict=True))
        accuracy = correct / len(self.rows) if self.rows else 0.0
        return {
            "score": 1.0 - accuracy,
            "qa": {"n": len(self.rows), "accuracy": round(accuracy, 4)},
            "decode_s": round(time.time() - t0, 1),
        }


class DecodedEval:
    """The stage's decoded validation: properties, descriptions, Q&A, any of them (score: the
    mean of the parts' scores)."""

    def __init__(self, config: Any, data_root: Path, vocab_path: Path | None = None) -> None:
        self.parts: list[Any] = []
        if config.files:
            self.parts.append(DecodedPropertyEval(config, data_root))
        if config.description_files:
            if vocab_path is None:
                raise ValueError("decoded description validation needs the SciBERT vocab")
            self.parts.append(DecodedDescriptionEval(config, data_root, vocab_path))
        if config.qa_files:
            self.parts.append(DecodedQaEval(config, data_root))

    def run(self, model: Any) -> dict[str, Any]:
        result: dict[str, Any] = {"targets": {}}
        scores = []
        for part in self.parts:
            out = part.run(model)
            scores.append(out.pop("score"))
            out.pop("decode_s", None)
            result.update({k: v for k, v in out.items() if k != "targets"})
            result["targets"].update(out.get("targets", {}))
        result["score"] = sum(scores) / len(scores)
        return result
