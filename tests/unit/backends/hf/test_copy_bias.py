"""Copy-biased decoding: the continuation of the longest match with the prompt is favoured."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llamo_plugin.backends.hf.copy_bias import PromptCopy
from llamo_plugin.backends.hf.greedy import greedy_loop
from llamo_plugin.config import DecodeConfig


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


def _scripted_loop(
    bias: float,
    prompt: tuple[int, ...] = (1, 2, 5, 6, 7, 8, 9, 11, 3),
    *,
    free: bool = False,
    ngram: int = 0,
    script: dict[int, int] | None = None,
) -> list[int]:
    """The real greedy loop on scripted logits: steps 0 and 1 prefer tokens 5 and 6 (or
    ``script``: step -> preferred token), then every token ties (argmax 0) unless the copy
    bias picks the prompt's continuation."""
    vocab, eos = 12, 11
    script = script or {0: 5, 1: 6}
    state = {"step": 0}

    def logits_for(batch: int) -> torch.Tensor:
        out = torch.zeros(batch, vocab)
        if state["step"] in script:
            out[:, script[state["step"]]] = 1.0
        return out

    def step(tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        state["step"] += 1
        return logits_for(tokens.shape[0])

    decode = DecodeConfig(
        max_new_tokens=8, copy_bias=bias, copy_free=free, no_repeat_ngram_size=ngram
    )
    copy = PromptCopy([list(prompt)], bias, 2, free) if bias else None
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


def test_free_copy_passes_the_ngram_ban_and_copies_each_position_once() -> None:
    # the caption repeats "5 6": the 2-gram ban cuts the copy at its second "6"
    repeated = (5, 6, 7, 5, 6, 8, 9, 11)
    assert _scripted_loop(2.0, repeated, ngram=2)[:5] == [5, 6, 7, 5, 0]
    # free: the copy goes on, past the first "5 6 7" (already copied) to "8 9" and EOS
    assert _scripted_loop(2.0, repeated, ngram=2, free=True) == [5, 6, 7, 5, 6, 8, 9, 11]
    # the answer starts the caption over ("The molecule is ..." again): without "once" the
    # bias copies the caption a second time; free, a reproduced passage is not copied again
    again = {0: 5, 1: 6, 4: 5, 5: 6}
    assert _scripted_loop(2.0, (5, 6, 7, 8), script=again) == [5, 6, 7, 8, 5, 6, 7, 8]
    assert _scripted_loop(2.0, (5, 6, 7, 8), script=again, free=True)[:7] == [5, 6, 7, 8, 5, 6, 0]


def test_decode_config_rejects_bad_copy_settings() -> None:
    import pytest

    from llamo_plugin.errors import ConfigError

    with pytest.raises(ConfigError):
        DecodeConfig(copy_bias=-1.0)
    with pytest.raises(ConfigError):
        DecodeConfig(copy_min_match=0)


def test_backend_biases_each_row_towards_its_own_prompt(tiny_model) -> None:  # type: ignore[no-untyped-def]
    """Through :class:`HFBackend` (decode batches, prefill groups, the shared prompt start,
    rows leaving the batch) each row is biased towards its *own* prompt: the answers equal
    batch-1 decoding, every step that follows a match continues it (an overwhelming bias),
    and the bias changes answers; off, the answers are the reference's."""
    from llamo_plugin.backends.base import PromptInputs
    from llamo_plugin.backends.hf import HFBackend, generate_batch

    smiles = ["CCO", "c1ccccc1C(=O)O", "C", "CC(=O)Oc1ccccc1C(=O)O", "[Na+].[Cl-]", "CCN(CC)CC"]
    questions = ["Describe this molecule.", "What is the IUPAC name of this molecule?"]
    examples = [tiny_model.prepare(s, questions[i % 2]) for i, s in enumerate(smiles)]
    with torch.inference_mode():
        tokens = tiny_model.encode_graphs([e.graph for e in examples])
    inputs = [PromptInputs(e.prompt, tokens[i].numpy()) for i, e in enumerate(examples)]
    plain = DecodeConfig(max_new_tokens=16, no_repeat_ngram_size=0, repetition_penalty=1.0)
    backend = HFBackend(tiny_model, max_batch_size=4, prefill_batch_size=2)
    free = backend.generate(inputs, plain)
    want = tiny_model.generate_with_graph_tokens([e.prompt for e in examples], tokens, plain)
    assert [g.token_ids for g in free] == [g.token_ids for g in want]
    decode = plain.replace(copy_bias=1e4, copy_min_match=1)
    copied = backend.generate(inputs, decode)
    single = [
        generate_batch(tiny_model, [e.prompt], tokens[i : i + 1], decode)[0]
        for i, e in enumerate(examples)
    ]
    assert [g.token_ids for g in copied] == [g.token_ids for g in single]
    assert [g.token_ids for g in copied] != [g.token_ids for g in free]
    checked = 0
    for e, g in zip(examples, copied, strict=True):
        ids = list(g.token_ids)
        for k in range(1, len(ids)):
            allowed = _brute_force(list(e.prompt.input_ids), ids[:k], min_match=1)
            if allowed:
                assert ids[k] in allowed, (k, ids)
                checked += 1
    assert checked >= 5  # the rule really acted
