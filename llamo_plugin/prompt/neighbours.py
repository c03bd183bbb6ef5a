"""Retrieved neighbours in a description prompt (retrieval-augmented descriptions).

The k most similar annotated molecules travel in the user message, before the instruction::

    Similar molecules: [1] CC(=O)Oc1ccccc1C(=O)O (similarity 0.82): The molecule is a
    member of ... [2] ... Describe this molecule.

Training (``llamo build-data``) and inference (``llamo annotate``, the Description node)
both build the text here, so the model reads at inference exactly what it was trained on.
Long captions and SMILES are cut at a word / character boundary to bound the prompt. One line:
the embedded model's tokenizer has no newline token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

HEADER = "Similar molecules:"
#: caps per neighbour (characters): keep a k=2 prompt well inside a 1,024-token context
MAX_CAPTION_CHARS = 500
MAX_SMILES_CHARS = 64


@dataclass(frozen=True)
class NeighbourText:
    """What the prompt shows of one retrieved molecule."""

    smiles: str
    similarity: float
    caption: str


def _cut_words(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = head.rfind(" ")
    return head[: space if space > limit // 2 else limit]


def neighbours_context(neighbours: Sequence[NeighbourText]) -> str:
    """The neighbour block (empty string when there are none)."""
    if not neighbours:
        return ""
    lines = [HEADER]
    for i, n in enumerate(neighbours, start=1):
        smiles = n.smiles[:MAX_SMILES_CHARS]
        caption = _cut_words(n.caption, MAX_CAPTION_CHARS)
        lines.append(f"[{i}] {smiles} (similarity {n.similarity:.2f}): {caption}")
    return " ".join(lines)


def with_neighbours(instruction: str, neighbours: Sequence[NeighbourText]) -> str:
    """``instruction`` preceded by the neighbour block (unchanged when there are none)."""
    context = neighbours_context(neighbours)
    return f"{context} {instruction}" if context else instruction
