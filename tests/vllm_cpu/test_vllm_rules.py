"""The vllm backend's logits processor (``backends/vllm_logits.py``), driven the way vLLM's
engine drives it (batch updates: removed, added, moved; then ``apply`` on the batch's logits),
against transformers' repetition penalty and no-repeat-ngram rules on the same rows."""

from __future__ import annotations

import pytest
import torch

vllm = pytest.importorskip("vllm")

from transformers.generation.logits_process import (  # noqa: E402
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
)
from vllm import SamplingParams  # noqa: E402
from vllm.v1.sample.logits_processor import BatchUpdate  # noqa: E402
from vllm.v1.sample.logits_processor.interface import MoveDirectionality  # noqa: E402

from llamo_plugin.backends.vllm import NGRAM_ARG, PENALTY_ARG  # noqa: E402
from llamo_plugin.backends.vllm_logits import RepetitionRulesLogitsProcessor  # noqa: E402

VOCAB = 40


def _params(penalty: float, n: int) -> SamplingParams:
    return SamplingParams(max_tokens=8, extra_args={PENALTY_ARG: penalty, NGRAM_ARG: n})


def _reference(scores: torch.Tensor, generated: list[int], penalty: float, n: int) -> torch.Tensor:
    """transformers' rules, in transformers' order, on one row ``[1, vocab]``."""
    ids = torch.tensor([generated])
    out = scores.clone()
    if penalty != 1.0 and generated:
        out = RepetitionPenaltyLogitsProcessor(penalty)(ids, out)
    if n > 0:
        out = NoRepeatNGramLogitsProcessor(n)(ids, out)
    return out


def test_processor_equals_transformers_across_batch_updates() -> None:
    proc = RepetitionRulesLogitsProcessor(None, torch.device("cpu"), False)
    assert not proc.is_argmax_invariant()
    generator = torch.Generator().manual_seed(0)
    outputs = {  # each request's live output-token list (vLLM appends to it)
        "a": [3, 7, 7, 12, 3, 7],
        "b": [5, 6, 5, 6, 5],
        "c": [1, 2, 3],
    }
    rules = {"a": (1.3, 2), "b": (2.0, 3), "c": (1.0, 0)}  # c: no rule at all
    proc.update_state(
        BatchUpdate(
            batch_size=3,
            removed=[],
            added=[(i, _params(*rules[k]), None, outputs[k]) for i, k in enumerate("abc")],
            moved=[],
        )
    )
    rows = {0: "a", 1: "b", 2: "c"}

    def check() -> None:
        scores = torch.randn(len(rows), VOCAB, generator=generator) * 4
        got = proc.apply(scores.clone())
        for i, k in rows.items():
            want = _reference(scores[i : i + 1], outputs[k], *rules[k])[0]
            assert torch.equal(got[i], want), (i, k)

    check()
    outputs["a"].append(12)  # a decode step later: the live lists grew
    outputs["b"].append(6)
    check()
    # "a" finishes; "c" is moved into its slot; "b" stays: the rules follow the requests.
    proc.update_state(
        BatchUpdate(
            batch_size=2,
            removed=[0],
            added=[],
            moved=[(2, 0, MoveDirectionality.UNIDIRECTIONAL)],
        )
    )
    rows = {0: "c", 1: "b"}
    check()
    # A new request takes slot 2 with no penalty: nothing of "a" or "c" may stick to it.
    outputs["d"] = [9, 9, 9]
    rules["d"] = (1.0, 0)
    proc.update_state(
        BatchUpdate(
            batch_size=3,
            removed=[],
            added=[(2, _params(1.0, 0), [9], outputs["d"])],
            moved=[(0, 1, MoveDirectionality.SWAP)],
        )
    )
    rows = {0: "b", 1: "c", 2: "d"}
    check()
