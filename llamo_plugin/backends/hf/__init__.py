"""The ``hf`` LM backend and its CPU/CUDA decode engine.

- :mod:`~llamo_plugin.backends.hf.backend`: :class:`HFBackend` (length buckets, prefill
  groups, the shared prompt start) and :func:`generate_batch` (one batch as given);
- :mod:`~llamo_plugin.backends.hf.llama_decoder`: the fast Llama decoder (transformers'
  Llama forward without its per-call machinery, over a preallocated KV cache);
- :mod:`~llamo_plugin.backends.hf.decode_attention`: its compiled (Numba) decode-step
  attention;
- :mod:`~llamo_plugin.backends.hf.greedy`: the greedy loop and ``generate``'s logits rules;
- :mod:`~llamo_plugin.backends.hf.copy_bias`: copy-biased decoding (retrieval prompts).

The reference path these are tested against, token for token, is transformers' ``generate``
(:meth:`~llamo_plugin.model.llamo.LlamoModel.generate_with_graph_tokens`); LMs the fast
decoder does not support run it.
"""

from llamo_plugin.backends.hf.backend import HFBackend, generate_batch

__all__ = ["HFBackend", "generate_batch"]
