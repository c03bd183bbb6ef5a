"""The hf backend: batched, bucketed decoding (the fast Llama decoder, or transformers'
``generate`` for other LMs) gives the tokens of the reference path, transformers' ``generate``
at batch size 1; cancellation; batch and prefill-group sizing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from llamo_plugin.backends.base import PromptInputs, length_buckets
from llamo_plugin.backends.graph_onnx import TorchGraphEncoder
from llamo_plugin.backends.hf import HFBackend, generate_batch
from llamo_plugin.backends.hf.backend import (
    kv_bytes_per_position,
    prefill_groups,
    shared_prefix_length,
)
from llamo_plugin.config import DecodeConfig
from llamo_plugin.errors import CancelledError
from llamo_plugin.graph.batching import collate_graphs

SMILES = ["CCO", "c1ccccc1C(=O)O", "C", "CC(=O)Oc1ccccc1C(=O)O", "[Na+].[Cl-]", "CCN(CC)CC"]
QUESTIONS = ["Describe this molecule.", "What is the IUPAC name of this molecule?"]


def _inputs(model: Any) -> list[PromptInputs]:
    examples = [model.prepare(s, QUESTIONS[i % 2]) for i, s in enumerate(SMILES)]
    tokens = TorchGraphEncoder(model.graph).encode(collate_graphs([e.graph for e in examples]))
    return [PromptInputs(e.prompt, tokens[i]) for i, e in enumerate(examples)]


@pytest.mark.parametrize(
    "decode",
    [
        DecodeConfig(max_new_tokens=12),
        DecodeConfig(max_new_tokens=12, no_repeat_ngram_size=2, repetition_penalty=1.3),
    ],
)
def test_batched_equals_batch_one(tiny_model: Any, decode: DecodeConfig) -> None:
    inputs = _inputs(tiny_model)
    batched = HFBackend(tiny_model, max_batch_size=4).generate(inputs, decode)
    single = [
        tiny_model.generate([tiny_model.prepare(s, QUESTIONS[i % 2])], decode)[0]
        for i, s in enumerate(SMILES)
    ]
    assert [g.token_ids for g in batched] == [tuple(g.token_ids) for g in single]
    assert [g.text for g in batched] == [g.text for g in single]
    assert all(g.stop_reason in ("eos", "length") for g in batched)


def test_cancel_inside_generation(tiny_model: Any) -> None:
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 3  # a few decoding steps, then cancel

    with pytest.raises(CancelledError):
        HFBackend(tiny_model).generate(
            _inputs(tiny_model), DecodeConfig(max_new_tokens=50), should_stop=should_stop
        )
    assert calls["n"] < 50


def test_small_groups_and_buckets_equal_generate(tiny_model: Any) -> None:
    """Several decode batches, each prefilled in groups of two after the shared prompt start:
    the tokens of ``generate`` on the whole left-padded batch."""
    inputs = _inputs(tiny_model)
    decode = DecodeConfig(max_new_tokens=20, no_repeat_ngram_size=4, repetition_penalty=1.1)
    fast = HFBackend(tiny_model, max_batch_size=4, prefill_batch_size=2).generate(inputs, decode)
    tokens = torch.from_numpy(np.stack([p.graph_tokens for p in inputs]))
    want = tiny_model.generate_with_graph_tokens([p.prompt for p in inputs], tokens, decode)
    assert [g.token_ids for g in fast] == [g.token_ids for g in want]
    assert [g.stop_reason for g in fast] == [g.stop_reason for g in want]


def test_generate_batch_equals_generate_and_cancels(tiny_model: Any) -> None:
    """One batch as given (the training-time decoded evaluation) on the fast decoder."""
    examples = [tiny_model.prepare(s, QUESTIONS[i % 2]) for i, s in enumerate(SMILES)]
    tokens = tiny_model.encode_graphs([e.graph for e in examples])
    prompts = [e.prompt for e in examples]
    decode = DecodeConfig(max_new_tokens=16, no_repeat_ngram_size=3, repetition_penalty=1.2)
    got = generate_batch(tiny_model, prompts, tokens, decode)
    want = tiny_model.generate_with_graph_tokens(prompts, tokens, decode)
    assert [g.token_ids for g in got] == [g.token_ids for g in want]
    with pytest.raises(CancelledError):
        generate_batch(tiny_model, prompts, tokens, decode, should_stop=lambda: True)


def _mistral() -> Any:
    from llamo_plugin.model.factory import TINY_LM_CONFIG, build_random_model, tiny_tokenizer

    return build_random_model(TINY_LM_CONFIG, tiny_tokenizer(), lm_class="MistralForCausalLM")


def test_other_lms_run_generate_without_the_copy_bias(caplog: pytest.LogCaptureFixture) -> None:
    """An LM the fast decoder does not support decodes with transformers' ``generate`` in
    the same buckets (two here); a copy bias, which only the fast decoder has, is dropped with
    one warning instead of failing the batch."""
    model = _mistral()
    inputs = _inputs(model)
    decode = DecodeConfig(max_new_tokens=12, no_repeat_ngram_size=2, repetition_penalty=1.3)
    single = [
        model.generate([model.prepare(s, QUESTIONS[i % 2])], decode)[0]
        for i, s in enumerate(SMILES)
    ]
    with caplog.at_level("WARNING", logger="llamo_plugin.backends.hf.backend"):
        got = HFBackend(model, max_batch_size=4).generate(inputs, decode.replace(copy_bias=5.0))
    assert [g.token_ids for g in got] == [g.token_ids for g in single]
    assert caplog.text.count("copy_bias 5 is not applied") == 1  # once, not per decode batch
    with pytest.raises(CancelledError):
        HFBackend(model).generate(inputs, decode, should_stop=lambda: True)


def test_cache_budget_sets_batch_tokens(tiny_model: Any) -> None:
    per_position = kv_bytes_per_position(tiny_model.lm)
    cfg = tiny_model.lm.config
    assert per_position == 2 * cfg.num_hidden_layers * cfg.hidden_size * 4  # fp32, no GQA
    backend = HFBackend(tiny_model, max_cache_bytes=per_position * 1000)
    assert backend.max_batch_tokens == 1000


def test_shared_prefix_stops_at_graph_slots_and_leaves_a_token() -> None:
    from llamo_plugin.prompt.assemble import GRAPH_SLOT, EncodedPrompt

    def p(ids: list[int]) -> PromptInputs:
        return PromptInputs(EncodedPrompt(ids, [-100] * len(ids)), None)

    assert shared_prefix_length([p([1, 2, 3, 4]), p([1, 2, 3, 5])]) == 3
    assert shared_prefix_length([p([1, 2, GRAPH_SLOT, 4]), p([1, 2, GRAPH_SLOT, 4])]) == 2
    assert shared_prefix_length([p([1, 2, 3]), p([1, 2, 3, 4])]) == 2  # one token left
    assert shared_prefix_length([p([7, 2]), p([1, 2])]) == 0


def test_prefill_groups_bound_padding_and_size() -> None:
    from llamo_plugin.prompt.assemble import EncodedPrompt

    lengths = [101, 99, 90, 70, 69, 68, 67, 66, 65, 64]
    prompts = [PromptInputs(EncodedPrompt([1] * n, [-100] * n), None) for n in lengths]
    groups = prefill_groups(prompts, max_rows=4)
    sizes = [[len(p.prompt.input_ids) for p in g] for g in groups]
    assert sizes == [[101, 99], [90], [70, 69, 68, 67], [66, 65, 64]]  # 101 - 90 > 10%
    assert [p for g in groups for p in g] == prompts  # order kept, nothing dropped


def test_length_buckets_respect_limits() -> None:
    lengths = [5, 50, 7, 48, 6, 49, 100]
    buckets = length_buckets(lengths, max_batch_size=2, max_batch_tokens=120)
    assert sorted(i for b in buckets for i in b) == list(range(len(lengths)))
    for b in buckets:
        assert len(b) <= 2
        assert len(b) * max(lengths[i] for i in b) <= 120 or len(b) == 1
    assert buckets[0] == [6]  # longest first, alone (2 x 100 > 120)


@pytest.mark.slow
def test_shipped_model_pipeline_equals_batch_one_generate() -> None:
    """The embedded model through the pipeline (onnxruntime graph encoder, fast Llama decode
    batch with prefill groups and the shared prompt start) gives exactly the tokens of the
    original path (PyTorch graph encoder, transformers ``generate`` at batch size 1)."""
    from llamo_plugin.backends.graph_onnx import OnnxGraphEncoder
    from llamo_plugin.bench import bench_smiles
    from llamo_plugin.checkpoint.format import ONNX_GRAPH, load_model
    from llamo_plugin.pipeline import Pipeline
    from llamo_plugin.registry import embedded_model_dir
    from llamo_plugin.tasks import DESCRIPTION

    model_dir = embedded_model_dir()
    if model_dir is None:  # pragma: no cover - the package ships it
        pytest.skip("no embedded model")
    model = load_model(model_dir)
    smiles = bench_smiles(24)
    decode = model.config.decode.replace(max_new_tokens=48)
    instruction = DESCRIPTION.default_instruction
    pipe = Pipeline(
        model,
        graph_encoder=OnnxGraphEncoder(model_dir / ONNX_GRAPH, device="cpu"),
        backend=HFBackend(model, prefill_batch_size=8),
    )
    rows = pipe.run(smiles, instruction, task="description", decode=decode)
    for s, row in zip(smiles, rows, strict=True):
        want = model.generate([model.prepare(s, instruction)], decode)[0]
        assert row.text == want.text, s


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fast_path_on_cuda_equals_generate() -> None:  # pragma: no cover - GPU only
    from llamo_plugin.model.factory import tiny_random_model

    model = tiny_random_model(seed=0).to("cuda")
    inputs = _inputs(model)
    decode = DecodeConfig(max_new_tokens=20, no_repeat_ngram_size=4, repetition_penalty=1.1)
    fast = HFBackend(model, prefill_batch_size=3).generate(inputs, decode)
    tokens = torch.from_numpy(np.stack([p.graph_tokens for p in inputs]))
    want = model.generate_with_graph_tokens([p.prompt for p in inputs], tokens, decode)
    assert [g.token_ids for g in fast] == [g.token_ids for g in want]
