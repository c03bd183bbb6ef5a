"""Caption metrics with the MolT5 protocol (``MolT5/evaluation/text_translation_metrics.py``).

The protocol, reproduced step by step:

1. Tokenise reference and prediction with the SciBERT uncased WordPiece vocabulary
   (``allenai/scibert_scivocab_uncased``: lower-casing, BERT basic tokenisation, WordPiece),
   without special tokens, truncated to 512 tokens (MolT5 calls
   ``tokenize(text, truncation=True, max_length=512, padding='max_length')`` and then drops
   ``[PAD]``, ``[CLS]`` and ``[SEP]``).
2. NLTK ``corpus_bleu`` on those tokens, weights ``(.5, .5)`` (BLEU-2) and
   ``(.25, .25, .25, .25)`` (BLEU-4).
3. NLTK ``meteor_score([ref_tokens], pred_tokens)`` per row (WordNet 3.0), averaged.
4. ``rouge_score`` ROUGE-1/2/L F-measures on the raw strings (no stemmer), averaged.

All scores are fractions in [0, 1] (papers often print them x100).

The WordPiece tokenizer is built directly with ``tokenizers`` from ``vocab.txt``: in
transformers 5.x ``BertTokenizerFast(vocab_file=...)`` silently ignores the file and builds a
5-token vocabulary, so we never rely on it, and we assert the vocabulary size.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: MolT5's ``--text_trunc_length``.
MAX_TOKENS = 512
#: Tokens MolT5 filters out after tokenising.
FILTERED_TOKENS = frozenset({"[PAD]", "[CLS]", "[SEP]"})
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
#: Entries of SciBERT's ``scibert_scivocab_uncased/vocab.txt``.
SCIBERT_VOCAB_SIZE = 31090


def read_vocab(vocab_path: str | Path) -> dict[str, int]:
    """``token -> id`` from a BERT ``vocab.txt`` (one token a line, id = line number).

    Raises ``ValueError`` if a token repeats (the id map would silently shrink).
    """
    lines = Path(vocab_path).read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]
    vocab = {token: i for i, token in enumerate(lines)}
    if len(vocab) != len(lines):
        raise ValueError(f"{vocab_path}: {len(lines) - len(vocab)} duplicate tokens")
    return vocab


@dataclass
class WordPieceTokenizer:
    """BERT uncased WordPiece tokenisation over a ``vocab.txt`` (SciBERT for captions)."""

    tokenizer: Any
    vocab_size: int

    @classmethod
    def from_vocab(
        cls, vocab_path: str | Path, *, lowercase: bool = True, expected_size: int | None = None
    ) -> WordPieceTokenizer:
        """Build from ``vocab.txt``; asserts the loaded vocabulary has every line of the file.

        Args:
            vocab_path: the vocabulary file.
            lowercase: BERT ``do_lower_case`` (``True`` for the uncased SciBERT).
            expected_size: if given, the vocabulary must have exactly this many tokens.
        """
        from tokenizers import AddedToken, Tokenizer, normalizers, pre_tokenizers
        from tokenizers.models import WordPiece

        vocab = read_vocab(vocab_path)
        if expected_size is not None and len(vocab) != expected_size:
            raise ValueError(f"{vocab_path}: {len(vocab)} tokens, expected {expected_size}")
        tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
        tok.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
        )
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        # As in a Hugging Face BERT tokenizer, special tokens in the text stay whole.
        tok.add_special_tokens([AddedToken(t, special=True) for t in SPECIAL_TOKENS if t in vocab])
        size = tok.get_vocab_size(with_added_tokens=True)
        if size != len(vocab):
            raise RuntimeError(
                f"WordPiece tokenizer has {size} tokens, {vocab_path} has "
                f"{len(vocab)}: the vocabulary was not loaded"
            )
        return cls(tok, size)

    def tokenize(self, text: str, max_length: int = MAX_TOKENS) -> list[str]:
        """WordPiece tokens of ``text``, cut to ``max_length``, minus [PAD]/[CLS]/[SEP]."""
        tokens = self.tokenizer.encode(text, add_special_tokens=False).tokens[:max_length]
        return [t for t in tokens if t not in FILTERED_TOKENS]


def load_scibert_tokenizer(vocab_path: str | Path) -> WordPieceTokenizer:
    """The SciBERT uncased tokenizer; refuses a vocabulary that is not 31,090 tokens."""
    return WordPieceTokenizer.from_vocab(vocab_path, expected_size=SCIBERT_VOCAB_SIZE)


def bleu_scores(
    references: Sequence[list[str]], hypotheses: Sequence[list[str]]
) -> dict[str, float]:
    """NLTK corpus BLEU-2 and BLEU-4 (one reference per hypothesis), as MolT5 computes them."""
    import warnings

    from nltk.translate.bleu_score import corpus_bleu

    refs = [[r] for r in references]
    hyps = list(hypotheses)
    with warnings.catch_warnings():  # "0 counts of n-gram overlaps": the score is 0, as in MolT5
        warnings.simplefilter("ignore", UserWarning)
        return {
            "bleu2": float(corpus_bleu(refs, hyps, weights=(0.5, 0.5))),
            "bleu4": float(corpus_bleu(refs, hyps, weights=(0.25, 0.25, 0.25, 0.25))),
        }


def meteor_scores(
    references: Sequence[list[str]], hypotheses: Sequence[list[str]], wordnet: Any
) -> list[float]:
    """Per-row NLTK METEOR of token lists with the given WordNet reader."""
    from nltk.translate.meteor_score import meteor_score

    return [
        float(meteor_score([r], h, wordnet=wordnet))
        for r, h in zip(references, hypotheses, strict=True)
    ]


def rouge_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measures on raw strings (``rouge_score``, no stemmer)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for pred, ref in zip(predictions, references, strict=True):
        # MolT5 calls score(out, gt): target and prediction swapped, which swaps precision
        # and recall but leaves the F-measure unchanged.
        scores = scorer.score(ref, pred)
        for key in totals:
            totals[key] += scores[key].fmeasure
    n = max(len(predictions), 1)
    return {key: value / n for key, value in totals.items()}


def caption_metrics(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    vocab_path: str | Path,
    nltk_data: str | Path | None = None,
    tokenizer: WordPieceTokenizer | None = None,
    wordnet: Any = None,
) -> dict[str, Any]:
    """BLEU-2/4, METEOR and ROUGE-1/2/L of ``predictions`` against ``references`` (MolT5).

    Args:
        predictions: generated captions (a missing prediction should be passed as ``""``,
            which scores zero, never dropped).
        references: the ground-truth captions, same order.
        vocab_path: SciBERT ``vocab.txt``.
        nltk_data: NLTK data folder with WordNet set up (see
            :mod:`llamo_plugin.eval.wordnet`); default ``$LLAMO_NLTK_DATA`` or the cache.
        tokenizer, wordnet: pre-built tokenizer / WordNet reader (skip loading them again).

    Returns:
        ``{"n", "bleu2", "bleu4", "meteor", "rouge1", "rouge2", "rougeL"}``, fractions.
    """
    from llamo_plugin.eval.wordnet import load_wordnet

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("no rows to score")
    tok = tokenizer or load_scibert_tokenizer(vocab_path)
    wn = wordnet if wordnet is not None else load_wordnet(nltk_data)
    preds = ["" if p is None else str(p) for p in predictions]
    ref_tokens = [tok.tokenize(r) for r in references]
    hyp_tokens = [tok.tokenize(p) for p in preds]
    meteor = meteor_scores(ref_tokens, hyp_tokens, wn)
    result: dict[str, Any] = {"n": len(preds)}
    result.update(bleu_scores(ref_tokens, hyp_tokens))
    result["meteor"] = sum(meteor) / len(meteor)
    result.update(rouge_scores(preds, list(references)))
    return result
