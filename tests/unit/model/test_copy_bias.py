"""Copy-biased decoding: the continuation of the longest match with the prompt is favoured."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llamo_plugin.config import DecodeConfig
from llamo_plugin.model.copy_bias import PromptCopy
from llamo_plugin.model.greedy import greedy_loop


def _brute_force(prompt: list[int], generated: list[int], min_match: int) -> set[int]:
    """Tokens following every occurrence of the longest suffix of ``generated`` in ``prompt``."""
    for length in range(len(generated), 0, -1):
        suffix = generated[-length:]
        ends = [
            i + length - 1
            for i in range(len(prompt) - length + 1)
            if prompt[i : i + length] == suffix
        ]
        if ends:
            if length < min_match:
                return set()
            return {prompt[e + 1] for e in ends if e + 1 < len(prompt) and prompt[e + 1] >= 0}
    return set()


@settings(max_examples=150, deadline=None)
@given(
    prompt=st.lists(st.integers(-1, 5), min_size=1, max_size=30),
    generated=st.lists(st.integers(0, 5), min_size=1, max_size=20),
    min_match=st.integers(1, 3),
)
def test_incremental_state_equals_brute_force(
    prompt: list[int], generated: list[int], min_match: int
) -> None:
    copy = PromptCopy([prompt], bias=1.0, min_match=min_match)
    for t in range(1, len(generated) + 1):  # one token per step, as the decode loop calls it
        scores = copy.apply(torch.zeros(1, 6), torch.tensor([0]), torch.tensor([generated[:t]]))
        boosted = set(torch.nonzero(scores[0]).flatten().tolist())
        assert boosted == _brute_force(prompt, generated[:t], min_match)


def test_rows_keep_their_own_state_when_the_batch_shrinks() -> None:
    copy = PromptCopy([[1, 2, 3], [1, 2, 4]], bias=5.0, min_match=2)
    both = copy.apply(torch.zeros(2, 6), torch.tensor([0, 1]), torch.tensor([[1, 2], [1, 2]]))
    assert both[0, 3] == 5.0 and both[1, 4] == 5.0 and both[0, 4] == 0.0
    # row 0 finished and was dropped: the running row 0 is original row 1
    one = copy.apply(torch.zeros(1, 6), torch.tensor([1]), torch.tensor([[1, 2, 4]]))
    assert torch.count_nonzero(one) == 0  # nothing follows the end of the prompt


def _scripted_loop(bias: float) -> list[int]:
    """The real greedy loop on scripted logits: steps 0 and 1 prefer tokens 5 and 6, then
    every token ties (argmax 0) unless the copy bias picks the prompt's continuation."""
    vocab, eos = 12, 11
    script = {0: 5, 1: 6}
    state = {"step": 0}

    def logits_for(batch: int) -> torch.Tensor:
        out = torch.zeros(batch, vocab)
        if state["step"] in script:
            out[:, script[state["step"]]] = 1.0
        return out

    def step(tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        state["step"] += 1
        return logits_for(tokens.shape[0])

    prompt = [1, 2, 5, 6, 7, 8, 9, eos, 3]
    decode = DecodeConfig(max_new_tokens=8, copy_bias=bias)
    copy = PromptCopy([prompt], bias, 2) if bias else None
    ids, cancelled = greedy_loop(
        logits_for(1),
        torch.tensor([len(prompt)]),
        decode,
        eos,
        step=step,
        drop=lambda finished: torch.nonzero(~finished, as_tuple=True)[0],
        copy=copy,
    )
    assert not cancelled
    return ids[0]


def test_greedy_loop_copies_with_bias_and_not_without() -> None:
    assert _scripted_loop(0.0) == [5, 6, 0, 0, 0, 0, 0, 0]
    assert _scripted_loop(2.0) == [5, 6, 7, 8, 9, 11]  # copied through the prompt's EOS


def test_decode_config_rejects_bad_copy_settings() -> None:
    import pytest

    from llamo_plugin.errors import ConfigError

    with pytest.raises(ConfigError):
        DecodeConfig(copy_bias=-1.0)
    with pytest.raises(ConfigError):
        DecodeConfig(copy_min_match=0)
