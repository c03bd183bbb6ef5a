"""Constrained decoding: answers well-formed by construction (e.g. property values ``-0.2482``).

A :class:`AnswerFormat` turns a regular expression over the answer text (``-?0\\.\\d{4}``) into
a per-step token mask: a token is allowed when the text generated so far plus the token's text
can still be completed to a full match (``regex``'s partial matching), and EOS is allowed only
once the text is a full match. Leading whitespace is always allowed (the tokenizer's word
boundary marker ``▁`` starts the first answer token, and the decoded text is stripped).

The mask depends only on the text so far. Masks are cached per text with every digit replaced
by ``0``: valid for formats in which every position that accepts a digit also accepts ``0``
(true of the number formats used here: ``-?0\\.\\d{4}``, ``\\d{1,2}\\.\\d{2}``), which keeps the
cache to a handful of entries.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch

_DIGIT = re.compile(r"\d")
#: Metaspace word-boundary marker of our (SentencePiece-like) tokenizers.
_METASPACE = "\u2581"


def _token_texts(tokenizer: Any) -> list[str | None]:
    """The text each token id contributes to a decoded string (``None`` for special tokens)."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    texts: list[str | None] = []
    for i in range(len(tokenizer)):
        if i in special:
            texts.append(None)
            continue
        piece = tokenizer.convert_ids_to_tokens(i)
        if piece is None or piece.startswith("<0x"):  # byte-fallback pieces: never allowed
            texts.append(None)
            continue
        texts.append(piece.replace(_METASPACE, " "))
    return texts


class AnswerFormat:
    """Token masks that keep a greedy answer inside ``pattern`` (see module docstring).

    Args:
        tokenizer: the model's tokenizer (``len``, ``convert_ids_to_tokens``, ``eos_token_id``).
        pattern: a regular expression the whole (stripped) answer must match.
        vocab_size: width of the LM's logits (may exceed ``len(tokenizer)``).
    """

    def __init__(self, tokenizer: Any, pattern: str, vocab_size: int | None = None) -> None:
        import regex

        self.pattern = pattern
        self._regex = regex.compile(rf"\s*(?:{pattern})")
        self._texts = _token_texts(tokenizer)
        self.vocab_size = max(vocab_size or 0, len(self._texts))
        self.eos_token_id = tokenizer.eos_token_id
        self._masks: dict[str, torch.Tensor] = {}

    def text_of(self, ids: Sequence[int]) -> str:
        """The answer text of generated ids (special tokens contribute nothing)."""
        n = len(self._texts)
        return "".join(self._texts[i] or "" for i in ids if 0 <= i < n)

    def allowed(self, text: str) -> torch.Tensor:
        """``[V]`` bool: the tokens that may follow ``text``."""
        key = _DIGIT.sub("0", text)
        mask = self._masks.get(key)
        if mask is None:
            mask = torch.zeros(self.vocab_size, dtype=torch.bool)
            for i, piece in enumerate(self._texts):
                if piece and self._regex.fullmatch(key + piece, partial=True) is not None:
                    mask[i] = True
            if self._regex.fullmatch(key) is not None:
                mask[self.eos_token_id] = True
            if not bool(mask.any()):  # a dead end cannot happen from a valid prefix; be safe
                mask[self.eos_token_id] = True
            self._masks[key] = mask
        return mask

    def mask_scores(self, scores: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
        """``scores [B, V]`` with every token outside the format at -inf, given the tokens
        generated so far ``generated [B, T]``."""
        rows = [self.allowed(self.text_of(r)) for r in generated.tolist()]
        allowed = torch.stack(rows).to(scores.device)[:, : scores.shape[1]]
        return scores.masked_fill(~allowed, float("-inf"))

    def median_tokens(self, scores: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
        """``[B]``: per row, the allowed token at the probability-weighted **median** of the
        candidates' numeric values instead of the most probable one.

        Greedy picks the mode of each digit chunk, so a small model answers a few round
        values (v0: 2 distinct HOMO values); the median of the model's own distribution is
        the choice that minimises the expected absolute error, and it moves with the
        molecule. Each allowed token is placed at the midpoint of the numbers its text can
        still become (:func:`number_midpoint`); EOS keeps the current text's value; rows where
        the valued tokens hold under half of the mass take the argmax.
        """
        masked = self.mask_scores(scores, generated)
        probs = torch.softmax(masked.float(), dim=-1)
        out = masked.argmax(dim=-1)
        for row, ids in enumerate(generated.tolist()):
            text = self.text_of(ids)
            cand = torch.nonzero(probs[row] > 1e-6).flatten().tolist()
            values, weights, tokens = [], [], []
            for tok in cand:
                piece = "" if tok == self.eos_token_id else self._texts[tok] or ""
                value = number_midpoint(text + piece)
                if value is not None:
                    values.append(value)
                    weights.append(float(probs[row, tok]))
                    tokens.append(tok)
            if sum(weights) < 0.5:
                continue
            order = sorted(range(len(values)), key=lambda i: values[i])
            half, acc = sum(weights) / 2, 0.0
            for i in order:
                acc += weights[i]
                if acc >= half:
                    out[row] = tokens[i]
                    break
        return out

    def logits_processor(self, median: bool = False) -> Any:
        """The same rule as a transformers ``LogitsProcessor`` (for ``generate``; called with
        ``input_ids`` = generated ids only when generating from ``inputs_embeds``); with
        ``median`` only the :meth:`median_tokens` choice survives."""
        from transformers import LogitsProcessor

        fmt = self

        class _Processor(LogitsProcessor):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
                if not median:
                    return fmt.mask_scores(scores, input_ids)
                chosen = fmt.median_tokens(scores, input_ids)
                keep = torch.full_like(scores, float("-inf"))
                return keep.scatter(1, chosen[:, None], 0.0)

        return _Processor()


_NUMBER = re.compile(r"^\s*(-?)(\d*)(\.?)(\d*)\s*$")


def number_midpoint(text: str) -> float | None:
    """The middle of the numbers a partial answer can still become (``None`` without a
    digit): ``-0.24`` -> -0.245 (it ends as -0.2400..-0.2499), ``-0.2482`` -> -0.24825 (a
    last digit may follow; a difference of half a unit in the last place, the same for every
    candidate), ``5`` -> 5.5."""
    match = _NUMBER.match(text)
    if match is None:
        return None
    sign, whole, point, decimals = match.groups()
    if not whole and not decimals:
        return None
    value = float(f"{whole or 0}.{decimals or 0}")
    step = 10.0 ** (-len(decimals)) if point else 1.0
    value += step / 2
    return -value if sign else value


def answer_format_for(model: Any, pattern: str) -> AnswerFormat:
    """The model's (cached) :class:`AnswerFormat` for ``pattern``."""
    cache: dict[str, AnswerFormat] = model.__dict__.setdefault("_answer_formats", {})
    fmt = cache.get(pattern)
    if fmt is None:
        vocab = model.lm.get_output_embeddings().weight.shape[0]
        fmt = cache[pattern] = AnswerFormat(model.tokenizer, pattern, vocab)
    return fmt
