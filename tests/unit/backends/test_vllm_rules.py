"""The vllm backend's repetition rules (pure functions, no vLLM needed) equal transformers'."""

from __future__ import annotations

import torch
from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

from llamo_plugin.backends.vllm import penalise_repeats


def test_penalise_repeats_matches_transformers() -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(1, 40, generator=generator) * 4  # positive and negative logits
    generated = [3, 7, 7, 12, 3, 39, 0]
    for penalty in (1.1, 2.0, 0.5):
        want = RepetitionPenaltyLogitsProcessor(penalty)(torch.tensor([generated]), scores.clone())
        got = scores.clone()[0]
        penalise_repeats(got, generated, penalty)
        assert torch.equal(got, want[0]), penalty
        untouched = [i for i in range(40) if i not in generated]
        assert torch.equal(got[untouched], scores[0, untouched])
