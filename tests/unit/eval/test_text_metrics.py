"""MolT5-protocol caption metrics on hand-checkable inputs, and the MolT5-small reproduction."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from llamo_plugin.eval.text_metrics import (
    SCIBERT_VOCAB_SIZE,
    WordPieceTokenizer,
    bleu_scores,
    caption_metrics,
    load_scibert_tokenizer,
    meteor_scores,
    read_vocab,
    rouge_scores,
)

TINY_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "molecule",
    "is",
    "a",
    "acid",
    "##ic",
    "benz",
    "##o",
    "-",
    "3",
    ".",
    "oxo",
]


@pytest.fixture()
def tiny_vocab(tmp_path: Path) -> Path:
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    return path


def test_wordpiece_on_a_tiny_vocab(tiny_vocab: Path) -> None:
    tok = WordPieceTokenizer.from_vocab(tiny_vocab)
    assert tok.vocab_size == len(TINY_VOCAB)
    assert tok.tokenize("The Molecule is a Benzoic acid.") == [
        "the",
        "molecule",
        "is",
        "a",
        "benz",
        "##o",
        "##ic",
        "acid",
        ".",
    ]
    assert tok.tokenize("3-oxo zzz") == ["3", "-", "oxo", "[UNK]"]
    # special tokens in the text stay whole and [CLS]/[SEP]/[PAD] are dropped (MolT5 filter)
    assert tok.tokenize("[CLS] the acid [SEP] [PAD] [MASK]") == ["the", "acid", "[MASK]"]
    assert tok.tokenize("the " * 600) == ["the"] * 512  # truncation at 512 tokens


def test_vocabulary_checks(tiny_vocab: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected"):
        WordPieceTokenizer.from_vocab(tiny_vocab, expected_size=SCIBERT_VOCAB_SIZE)
    dup = tmp_path / "dup.txt"
    dup.write_text("[PAD]\n[UNK]\nthe\nthe\n")
    with pytest.raises(ValueError, match="duplicate"):
        read_vocab(dup)


def test_scibert_vocabulary_is_really_loaded(scibert_vocab: Path) -> None:
    lines = scibert_vocab.read_text(encoding="utf-8").splitlines()
    tok = load_scibert_tokenizer(scibert_vocab)
    assert tok.vocab_size == len(lines) == SCIBERT_VOCAB_SIZE
    assert tok.tokenize("The molecule is a 3-oxo steroid.") == [
        "the",
        "molecule",
        "is",
        "a",
        "3",
        "-",
        "ox",
        "##o",
        "steroid",
        ".",
    ]


def test_bleu_identical_and_known_overlap() -> None:
    ref = ["a", "b", "c", "d"]
    assert bleu_scores([ref], [ref]) == pytest.approx({"bleu2": 1.0, "bleu4": 1.0})
    # hyp a b c e: unigram precision 3/4, bigram 2/3, same length (no brevity penalty)
    got = bleu_scores([ref], [["a", "b", "c", "e"]])
    assert got["bleu2"] == pytest.approx(math.sqrt(3 / 4 * 2 / 3))
    # corpus BLEU pools counts over rows: 2 rows, 7/8 unigrams, 5/6 bigrams match
    got = bleu_scores([ref, ref], [ref, ["a", "b", "c", "e"]])
    assert got["bleu2"] == pytest.approx(math.sqrt(7 / 8 * 5 / 6))


def test_rouge_identical_and_known_overlap() -> None:
    assert rouge_scores(["the acid is red"], ["the acid is red"]) == pytest.approx(
        {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    )
    got = rouge_scores(["a b c d"], ["a b c e"])
    assert got == pytest.approx({"rouge1": 3 / 4, "rouge2": 2 / 3, "rougeL": 3 / 4})
    assert rouge_scores(["", "a b c d"], ["x y", "a b c d"])["rouge1"] == pytest.approx(0.5)


def test_meteor_identical_and_disjoint(wordnet_reader) -> None:
    ref = ["the", "molecule", "is", "an", "acid"]
    # identical: F-mean 1, one chunk of 5 matches -> penalty 0.5 * (1/5)^3
    assert meteor_scores([ref], [ref], wordnet_reader)[0] == pytest.approx(1 - 0.5 / 125)
    assert meteor_scores([ref], [["zzz", "qqq"]], wordnet_reader)[0] == 0.0
    # WordNet synonyms match ("dog" ~ "hound"): 4 matches in one chunk; "spoon" does not
    # (NLTK looks synonyms up after stemming, so e.g. "car" ~ "automobil" would not match)
    hyp = ["the", "dog", "is", "red"]
    synonym = meteor_scores([["the", "hound", "is", "red"]], [hyp], wordnet_reader)[0]
    other = meteor_scores([["the", "spoon", "is", "red"]], [hyp], wordnet_reader)[0]
    assert synonym == pytest.approx(1 - 0.5 / 64)
    assert other < synonym


def test_caption_metrics_small(scibert_vocab: Path, wordnet_reader) -> None:
    refs = ["The molecule is a benzoic acid.", "The molecule is an amino acid."]
    got = caption_metrics(refs, refs, vocab_path=scibert_vocab, wordnet=wordnet_reader)
    assert got["n"] == 2
    for key in ("bleu2", "bleu4", "rouge1", "rouge2", "rougeL"):
        assert got[key] == pytest.approx(1.0)
    worse = caption_metrics(
        ["The molecule is a benzoic acid.", ""],
        refs,
        vocab_path=scibert_vocab,
        wordnet=wordnet_reader,
    )
    assert worse["meteor"] < got["meteor"] and worse["rouge1"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        caption_metrics(refs, refs[:1], vocab_path=scibert_vocab, wordnet=wordnet_reader)


def test_molt5_small_reproduction(shared_dir: Path, scibert_vocab: Path, wordnet_reader) -> None:
    """The protocol check: MolT5-small's released predictions give its BLEU-4 0.4449."""
    path = shared_dir / "data" / "molt5-predictions" / "molt5-small-smiles2caption.txt"
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    got = caption_metrics(
        [r["output"] for r in rows],
        [r["ground truth"] for r in rows],
        vocab_path=scibert_vocab,
        wordnet=wordnet_reader,
    )
    assert got["n"] == 3300
    assert got["bleu4"] == pytest.approx(0.4449, abs=1e-3)
    assert got["bleu2"] == pytest.approx(0.5315, abs=1e-3)
    assert got["meteor"] == pytest.approx(0.5575, abs=1e-3)
    assert got["rougeL"] == pytest.approx(0.5639, abs=1e-3)
