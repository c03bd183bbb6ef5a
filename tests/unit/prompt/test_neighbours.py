"""The neighbour block of retrieval-augmented description prompts."""

from __future__ import annotations

from llamo_plugin.prompt.neighbours import (
    MAX_CAPTION_CHARS,
    MAX_SMILES_CHARS,
    NeighbourText,
    neighbours_context,
    with_neighbours,
)


def test_block_format_and_caps() -> None:
    long_caption = "The molecule is " + "very " * 300 + "long."
    block = neighbours_context(
        [
            NeighbourText("CCO", 0.8123, "The molecule is ethanol.\nIt is an alcohol."),
            NeighbourText("C" * 200, 0.5, long_caption),
        ]
    )
    assert block.startswith("Similar molecules: [1] CCO (similarity 0.81): The molecule is")
    assert "\n" not in block  # the embedded tokenizer has no newline token
    second = block.split(" [2] ")[1]
    smiles, rest = second.split(" (similarity 0.50): ")
    assert smiles == "C" * MAX_SMILES_CHARS
    assert len(rest) <= MAX_CAPTION_CHARS and rest.endswith("very")  # cut at a word
    assert with_neighbours("Describe it.", []) == "Describe it."
    assert with_neighbours("Describe it.", [NeighbourText("C", 1.0, "x")]).endswith(
        "(similarity 1.00): x Describe it."
    )
