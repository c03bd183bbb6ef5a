"""The vllm backend's logits processor applies the hf loop's repetition penalty
(:func:`llamo_plugin.model.greedy.apply_repetition_penalty`) to one row of the batch's logits;
on such a row, with repeated tokens, it equals transformers' (no vLLM needed)."""

from __future__ import annotations

import torch
from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

from llamo_plugin.model.greedy import apply_repetition_penalty


def test_repetition_penalty_on_one_row_matches_transformers() -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(1, 40, generator=generator) * 4  # positive and negative logits
    generated = [3, 7, 7, 12, 3, 39, 0]
    for penalty in (1.1, 2.0, 0.5):
        want = RepetitionPenaltyLogitsProcessor(penalty)(torch.tensor([generated]), scores.clone())
        got = apply_repetition_penalty(scores.clone(), torch.tensor([generated]), penalty)[0]
        assert torch.equal(got, want[0]), penalty
        untouched = [i for i in range(40) if i not in generated]
        assert torch.equal(got[untouched], scores[0, untouched])
