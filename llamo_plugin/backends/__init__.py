"""Inference backends: the graph encoder (onnxruntime or PyTorch) and the LM (hf or vllm).

All LM backends implement :class:`~llamo_plugin.backends.base.LMBackend`:
``generate(list of PromptInputs) -> list of Generation``, built from the same prompt assembly.
"""
