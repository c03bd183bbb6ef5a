"""Graph stage (torch): batching, the GIN encoder and the multi-level projector.

- :mod:`.data`       :class:`~llamo_plugin.records.MolGraph` -> PyG ``Data``; ``Batch`` collation
- :mod:`.batching`   list of ``MolGraph`` -> numpy :class:`GraphBatch` (the ONNX inference path)
- :mod:`.gin`        5-layer GIN over OGB features (PyG ``MessagePassing``); all node-state levels
- :mod:`.projector`  multi-level cross-attention projector -> ``[B, 28, d_llm]`` graph tokens
- :mod:`.module`     GIN + projector on a PyG ``Batch`` (or seven plain tensors)
- :mod:`.refinement`, :mod:`.deduplicated`  the exact colour-refined inference form (ONNX)
"""
