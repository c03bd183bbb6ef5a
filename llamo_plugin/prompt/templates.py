"""LLaMo's conversation format (reference §6), as plain strings.

The first user turn carries the molecule: ``{smiles}<graph> {instruction}`` (no space before
the placeholder, one after), or ``{smiles} {instruction}`` when the instruction already holds
the placeholder. It is merged with the system message into one Llama-2 ``[INST]`` block;
later user turns are ``<s>[INST] {user} [/INST]``; assistant turns are ``{answer}</s>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Turn:
    """One conversation turn."""

    role: Literal["user", "assistant"]
    content: str

    def __post_init__(self) -> None:
        if self.role not in ("user", "assistant"):
            raise ValueError(f"unknown role {self.role!r}")


def molecule_user_text(
    smiles_text: str, instruction: str, placeholder: str = "<graph>", include_smiles: bool = True
) -> str:
    """The first user message: molecule SMILES, graph placeholder and instruction."""
    prefix = smiles_text if include_smiles else ""
    if placeholder in instruction:
        return f"{prefix} {instruction}".lstrip() if prefix else instruction
    return f"{prefix}{placeholder} {instruction}"


def first_user_block(system_message: str, user_text: str) -> str:
    """System message + first user turn as one Llama-2 ``[INST]`` block."""
    return f"[INST] <<SYS>>\n{system_message}\n<</SYS>>\n\n{user_text} [/INST]"


def later_user_block(user_text: str, bos_token: str) -> str:
    """A later user turn; the literal BOS token is parsed by the tokenizer as a special token."""
    return f"{bos_token}[INST] {user_text} [/INST]"


def assistant_block(answer: str, eos_token: str) -> str:
    """An assistant turn: the stripped answer followed by the literal EOS token."""
    return f"{answer.strip()}{eos_token}"


def normalise_turns(instruction: str | list[Turn] | list[dict[str, str]]) -> list[Turn]:
    """Accept one instruction string or a list of turns; the list must alternate, starting
    and ending with a user turn."""
    if isinstance(instruction, str):
        return [Turn("user", instruction)]
    turns = [t if isinstance(t, Turn) else Turn(t["role"], t["content"]) for t in instruction]  # type: ignore[arg-type]
    if not turns:
        raise ValueError("a conversation needs at least one user turn")
    for i, turn in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if turn.role != expected:
            raise ValueError(f"turn {i} should be a {expected} turn, got {turn.role}")
    if turns[-1].role != "user":
        raise ValueError("a conversation must end with a user turn")
    return turns
