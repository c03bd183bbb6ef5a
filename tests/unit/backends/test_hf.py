"""The hf backend: batched, bucketed greedy decoding equals batch-1 decoding; cancellation."""

from __future__ import annotations

from typing import Any

import pytest

from llamo_plugin.backends.base import PromptInputs, length_buckets
from llamo_plugin.backends.graph_onnx import TorchGraphEncoder
from llamo_plugin.backends.hf import HFBackend
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
