"""The greedy loop's logits rules are transformers' (what ``generate`` applies)."""

from __future__ import annotations

import torch

from llamo_plugin.backends.hf.greedy import apply_repetition_penalty, ban_repeated_ngrams


def test_ngram_ban_and_penalty_match_transformers() -> None:
    from transformers.generation.logits_process import (
        NoRepeatNGramLogitsProcessor,
        RepetitionPenaltyLogitsProcessor,
    )

    gen = torch.Generator().manual_seed(0)
    for steps in range(0, 12):
        ids = torch.randint(0, 6, (3, steps), generator=gen)
        scores = torch.randn(3, 8, generator=gen)
        for n in (1, 2, 3, 4):
            want = NoRepeatNGramLogitsProcessor(n)(ids, scores.clone())
            torch.testing.assert_close(ban_repeated_ngrams(scores, ids, n), want)
        want = RepetitionPenaltyLogitsProcessor(1.3)(ids, scores.clone())
        torch.testing.assert_close(apply_repetition_penalty(scores, ids, 1.3), want)
