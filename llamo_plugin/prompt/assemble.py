"""Stage 4: conversation -> token ids with graph slots -> padded batch -> spliced embeddings.

Each text chunk around the graph placeholder is stripped and tokenised *separately*
(``add_special_tokens=False``), as LLaMo's ``encode_prompt`` does; the placeholder becomes
``num_graph_tokens`` slots (id :data:`GRAPH_SLOT`). Only assistant tokens are labelled.

Works with any Hugging Face tokenizer that has BOS/EOS/PAD tokens: the Llama-2 tokenizer of
the official checkpoint (slow or fast, ``<pad>`` added as id 32000) or our own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llamo_plugin.config import PromptConfig
from llamo_plugin.errors import TokenCountMismatchError
from llamo_plugin.prompt.templates import (
    Turn,
    assistant_block,
    first_user_block,
    later_user_block,
    molecule_user_text,
    normalise_turns,
)

#: Placeholder id of a graph-token slot in :attr:`EncodedPrompt.input_ids` (never a vocab id).
GRAPH_SLOT = -1
#: Label id ignored by the loss.
IGNORE_INDEX = -100


@dataclass(frozen=True)
class EncodedPrompt:
    """One encoded conversation.

    Attributes:
        input_ids: token ids, with :data:`GRAPH_SLOT` at the graph positions.
        labels: same length; :data:`IGNORE_INDEX` except on assistant tokens.
    """

    input_ids: list[int]
    labels: list[int]

    @property
    def num_graph_slots(self) -> int:
        return sum(1 for i in self.input_ids if i == GRAPH_SLOT)


@dataclass(frozen=True)
class PromptBatch:
    """A padded batch (torch tensors).

    Shapes:
        input_ids: ``[B, L]`` int64, graph slots and padding hold the pad id
        graph_mask: ``[B, L]`` bool, True at graph slots
        attention_mask: ``[B, L]`` int64, 0 at padding
        labels: ``[B, L]`` int64 or ``None``
    """

    input_ids: Any
    graph_mask: Any
    attention_mask: Any
    labels: Any = None


def _tokenize(tokenizer: Any, text: str) -> list[int]:
    text = text.strip()
    if not text:
        return []
    return list(tokenizer.encode(text, add_special_tokens=False))


def _encode_text_with_slots(
    tokenizer: Any, text: str, placeholder: str, num_slots: int
) -> list[int]:
    ids: list[int] = []
    chunks = text.split(placeholder)
    for i, chunk in enumerate(chunks):
        if i:
            ids.extend([GRAPH_SLOT] * num_slots)
        ids.extend(_tokenize(tokenizer, chunk))
    return ids


def encode_conversation(
    tokenizer: Any,
    smiles_text: str,
    instruction: str | list[Turn] | list[dict[str, str]],
    *,
    config: PromptConfig,
    num_graph_tokens: int,
    answer: str | None = None,
) -> EncodedPrompt:
    """Encode a molecule conversation; with ``answer`` the final assistant turn is appended
    and labelled (training), without it the ids end at the last ``[/INST]`` (inference)."""
    turns = normalise_turns(instruction)
    if config.template != "llama2_chat":  # pragma: no cover - only one template exists
        raise ValueError(f"unknown template {config.template}")
    ids = [tokenizer.bos_token_id]
    labels = [IGNORE_INDEX]

    def add(new_ids: list[int], labelled: bool) -> None:
        ids.extend(new_ids)
        labels.extend(new_ids if labelled else [IGNORE_INDEX] * len(new_ids))

    for i, turn in enumerate(turns):
        if i == 0:
            user = molecule_user_text(
                smiles_text, turn.content, config.graph_placeholder, config.include_smiles
            )
            text = first_user_block(config.system_message, user)
            add(
                _encode_text_with_slots(
                    tokenizer, text, config.graph_placeholder, num_graph_tokens
                ),
                False,
            )
        elif turn.role == "user":
            add(_tokenize(tokenizer, later_user_block(turn.content, tokenizer.bos_token)), False)
        else:
            add(_tokenize(tokenizer, assistant_block(turn.content, tokenizer.eos_token)), True)
    if answer is not None:
        add(_tokenize(tokenizer, assistant_block(answer, tokenizer.eos_token)), True)
    return EncodedPrompt(ids, labels)


def collate_prompts(
    prompts: Sequence[EncodedPrompt],
    pad_id: int,
    *,
    padding_side: str = "left",
    with_labels: bool = False,
) -> PromptBatch:
    """Pad to the longest prompt. Inference uses left padding (HF ``generate`` with
    ``inputs_embeds`` needs it); training uses right padding."""
    import torch

    if padding_side not in ("left", "right"):
        raise ValueError("padding_side must be 'left' or 'right'")
    length = max(len(p.input_ids) for p in prompts)
    batch = len(prompts)
    ids = torch.full((batch, length), GRAPH_SLOT, dtype=torch.long)
    attn = torch.zeros((batch, length), dtype=torch.long)
    labels = torch.full((batch, length), IGNORE_INDEX, dtype=torch.long)
    for row, p in enumerate(prompts):
        n = len(p.input_ids)
        sl = slice(length - n, length) if padding_side == "left" else slice(0, n)
        ids[row, sl] = torch.tensor(p.input_ids, dtype=torch.long)
        labels[row, sl] = torch.tensor(p.labels, dtype=torch.long)
        attn[row, sl] = 1
    graph_mask = (ids == GRAPH_SLOT) & (attn == 1)
    ids = ids.masked_fill(ids == GRAPH_SLOT, pad_id)
    return PromptBatch(ids, graph_mask, attn, labels if with_labels else None)


def splice_graph_tokens(token_embeds: Any, graph_mask: Any, graph_tokens: Any) -> Any:
    """Write the graph tokens into the graph slots, in one vectorised step.

    Shapes:
        token_embeds ``[B, L, D]``; graph_mask ``[B, L]`` bool; graph_tokens ``[B, T, D]``
        -> ``[B, L, D]`` in ``token_embeds.dtype``

    Raises:
        TokenCountMismatchError: when any row does not have exactly ``T`` slots, or widths differ.
    """
    batch, num_tokens, width = graph_tokens.shape
    if token_embeds.shape[0] != batch or token_embeds.shape[2] != width:
        raise TokenCountMismatchError(
            f"graph tokens {tuple(graph_tokens.shape)} do not fit token embeddings "
            f"{tuple(token_embeds.shape)}"
        )
    per_row = graph_mask.sum(dim=1)
    if bool((per_row != num_tokens).any()):
        raise TokenCountMismatchError(
            f"each prompt needs {num_tokens} graph slots, got {per_row.tolist()}"
        )
    return token_embeds.masked_scatter(
        graph_mask.unsqueeze(-1), graph_tokens.to(token_embeds.dtype)
    )
