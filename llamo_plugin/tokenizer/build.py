"""Train a small SentencePiece-style BPE tokenizer for our own LLaMo models.

It behaves like the Llama-2 tokenizer where the prompt format depends on it: a ``▁`` word
prefix at the start of every separately tokenised chunk (Metaspace), and the special tokens
``<unk>`` (0), ``<s>`` (1), ``</s>`` (2), ``<pad>`` (3), which the chat template writes
literally (``<s>[INST] ...``, ``{answer}</s>``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 1000, *, split_digits: bool = False
) -> Any:
    """Train a BPE tokenizer on ``texts``; returns a ``PreTrainedTokenizerFast``.

    ``split_digits`` makes every digit its own token (``-0.2482`` -> ``▁-``, ``0``, ``.``,
    ``2``, ...), so numbers are read and written digit by digit. Deterministic for a given
    input order.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
    metaspace = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.pre_tokenizer = (
        pre_tokenizers.Sequence([metaspace, pre_tokenizers.Digits(individual_digits=True)])
        if split_digits
        else metaspace
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    texts = list(texts)
    alphabet = sorted({ch for t in texts for ch in t.replace(" ", "▁")})
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        clean_up_tokenization_spaces=False,
    )
