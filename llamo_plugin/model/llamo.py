"""Stage 5: the LLaMo model and its reference greedy generation.

:class:`LlamoModel` joins the :class:`~llamo_plugin.graph.module.GraphTokenizer` to a Hugging
Face causal LM (``LlamaForCausalLM`` first; any model with ``get_input_embeddings`` and
``generate(inputs_embeds=...)`` works). Graph tokens are computed in fp32, cast to the LM dtype
and spliced into the token embeddings at the prompt's graph slots. Its ``generate`` is
transformers' ``generate`` (the reference path); the product decodes with the ``hf``
backend's engine (:mod:`llamo_plugin.backends.hf`), which gives the same tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from llamo_plugin.chem.featurize import featurize
from llamo_plugin.chem.smiles import parse_smiles, prompt_smiles
from llamo_plugin.config import DecodeConfig, LlamoConfig
from llamo_plugin.errors import ConfigError
from llamo_plugin.graph.data import collate_pyg
from llamo_plugin.graph.module import GraphTokenizer
from llamo_plugin.prompt.assemble import (
    EncodedPrompt,
    PromptBatch,
    collate_prompts,
    encode_conversation,
    splice_graph_tokens,
)
from llamo_plugin.prompt.templates import Turn
from llamo_plugin.records import Generation, MolGraph, ParsedMolecule, StopReason

logger = logging.getLogger(__name__)

Instruction = str | list[Turn] | list[dict[str, str]]


@dataclass(frozen=True)
class PreparedExample:
    """A molecule + instruction ready for the model (the output of stages 0, 1 and 4)."""

    molecule: ParsedMolecule
    graph: MolGraph
    prompt: EncodedPrompt


class LlamoModel(nn.Module):
    """LLaMo: graph tokenizer + causal LM + tokenizer.

    Args:
        config: graph/projector/prompt/decode config; ``projector.output_size`` must equal the
            LM's hidden size.
        lm: a Hugging Face causal LM.
        tokenizer: its tokenizer, with BOS, EOS and PAD tokens.
    """

    def __init__(self, config: LlamoConfig, lm: Any, tokenizer: Any) -> None:
        super().__init__()
        hidden = lm.get_input_embeddings().weight.shape[1]
        if config.projector.output_size != hidden:
            raise ConfigError(
                f"projector.output_size {config.projector.output_size} != LM hidden size {hidden}"
            )
        if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
            raise ConfigError("the tokenizer needs a pad and an eos token")
        if len(tokenizer) > lm.get_input_embeddings().weight.shape[0]:
            raise ConfigError("the tokenizer has more tokens than the LM's embedding table")
        self.config = config
        self.graph = GraphTokenizer(config.graph, config.projector)
        self.lm = lm
        self.tokenizer = tokenizer
        #: sha256 identity of the weights this model was loaded from (set by the loader).
        self.checksum: str | None = None

    # ----------------------------------------------------------------- inputs (stages 0, 1, 4)
    def prepare(
        self, smiles: Any, instruction: Instruction, answer: str | None = None
    ) -> PreparedExample:
        """Parse, featurise and encode one example; raises ``InvalidSmilesError``."""
        molecule = parse_smiles(smiles)
        prompt = encode_conversation(
            self.tokenizer,
            prompt_smiles(molecule, self.config.prompt.max_smiles_chars),
            instruction,
            config=self.config.prompt,
            num_graph_tokens=self.graph.num_graph_tokens,
            answer=answer,
        )
        return PreparedExample(molecule, featurize(molecule), prompt)

    @property
    def device(self) -> torch.device:
        return self.lm.get_input_embeddings().weight.device

    def encode_graphs(self, graphs: Sequence[MolGraph]) -> torch.Tensor:
        """Graph tokens ``[B, T, D]`` (fp32) for a list of molecules."""
        return self.graph(collate_pyg(graphs).to(self.device))

    def inputs_embeds(self, batch: PromptBatch, graph_tokens: torch.Tensor) -> torch.Tensor:
        """Token embeddings with graph tokens spliced in: ``[B, L, D]`` in the LM dtype."""
        embed = self.lm.get_input_embeddings()
        token_embeds = embed(batch.input_ids.to(self.device))
        return splice_graph_tokens(token_embeds, batch.graph_mask.to(self.device), graph_tokens)

    # ---------------------------------------------------------------------------- training
    def forward(self, examples: Sequence[PreparedExample]) -> Any:
        """Causal-LM loss on the assistant tokens of ``examples`` (right padding)."""
        batch = collate_prompts(
            [e.prompt for e in examples],
            self.tokenizer.pad_token_id,
            padding_side="right",
            with_labels=True,
        )
        embeds = self.inputs_embeds(batch, self.encode_graphs([e.graph for e in examples]))
        return self.lm(
            inputs_embeds=embeds,
            attention_mask=batch.attention_mask.to(self.device),
            labels=batch.labels.to(self.device),
        )

    # -------------------------------------------------------------------------- generation
    def _generation_config(self, decode: DecodeConfig) -> Any:
        from transformers import GenerationConfig

        return GenerationConfig(
            do_sample=False,
            num_beams=1,
            max_new_tokens=decode.max_new_tokens,
            eos_token_id=self.tokenizer.eos_token_id,
            pad_token_id=self.tokenizer.pad_token_id,
            bos_token_id=self.tokenizer.bos_token_id,
            no_repeat_ngram_size=decode.no_repeat_ngram_size,
            repetition_penalty=decode.repetition_penalty,
        )

    @torch.inference_mode()
    def generate(
        self,
        examples: Sequence[PreparedExample],
        decode: DecodeConfig | None = None,
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Generation]:
        """Greedy answers for one batch of prepared examples with transformers' ``generate``
        (:meth:`generate_with_graph_tokens`, the reference path)."""
        if not examples:
            return []
        graph_tokens = self.encode_graphs([e.graph for e in examples])
        return self.generate_with_graph_tokens(
            [e.prompt for e in examples], graph_tokens, decode, should_stop=should_stop
        )

    @torch.inference_mode()
    def generate_with_graph_tokens(
        self,
        prompts: Sequence[EncodedPrompt],
        graph_tokens: torch.Tensor,
        decode: DecodeConfig | None = None,
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Generation]:
        """Greedy answers for one batch of prompts whose graph tokens ``[B, T, D]`` were
        computed elsewhere (e.g. by onnxruntime), with transformers' ``generate`` (left
        padding, KV cache): the reference path, which the ``hf`` backend's fast decoder
        (:mod:`llamo_plugin.backends.hf`) is tested against token for token and
        ``llamo bench`` measures at batch size 1. ``decode.answer_format`` is enforced by a
        logits processor; ``decode.copy_bias`` is not supported here (``ConfigError``).
        ``should_stop`` is polled after every decoding step; once it turns true generation
        ends for the whole batch with ``CancelledError`` (the one cancellation contract of
        every LM path: partial answers are never returned)."""
        if not prompts:
            return []
        decode = decode or self.config.decode
        if decode.copy_bias:
            raise ConfigError(
                "decode: copy_bias is applied by the hf backend's fast decoder "
                "(llamo_plugin.backends.hf), not by transformers' generate"
            )
        batch = collate_prompts(prompts, self.tokenizer.pad_token_id, padding_side="left")
        embeds = self.inputs_embeds(batch, graph_tokens.to(self.device))
        kwargs: dict[str, Any] = {}
        if should_stop is not None:
            from transformers import StoppingCriteria, StoppingCriteriaList

            class _Cancel(StoppingCriteria):
                def __call__(self, input_ids: Any, scores: Any, **_: Any) -> Any:
                    done = bool(should_stop())
                    return torch.full(
                        (input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device
                    )

            kwargs["stopping_criteria"] = StoppingCriteriaList([_Cancel()])
        if decode.answer_format:
            from transformers import LogitsProcessorList

            from llamo_plugin.model.answer_format import answer_format_for

            fmt = answer_format_for(self, decode.answer_format)
            median = decode.answer_choice == "median"
            kwargs["logits_processor"] = LogitsProcessorList([fmt.logits_processor(median)])
        out = self.lm.generate(
            inputs_embeds=embeds,
            attention_mask=batch.attention_mask.to(self.device),
            generation_config=self._generation_config(decode),
            **kwargs,
        )
        if should_stop is not None and should_stop():
            from llamo_plugin.errors import CancelledError

            raise CancelledError("generation cancelled")
        return [self.decode_ids(row.tolist()) for row in out]

    def decode_ids(self, ids: list[int]) -> Generation:
        """A :class:`Generation` from generated ids (cut after the first EOS)."""
        eos = self.tokenizer.eos_token_id
        if eos in ids:
            ids = ids[: ids.index(eos) + 1]
            reason: StopReason = "eos"
        else:
            pad = self.tokenizer.pad_token_id
            while ids and ids[-1] == pad and pad != eos:  # pragma: no cover - defensive
                ids = ids[:-1]
            reason = "length"
        text = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
        return Generation(text, tuple(ids), reason)
