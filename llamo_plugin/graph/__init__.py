"""Graph stage (torch): batching, the GIN encoder and the multi-level projector.

- :mod:`.batching`   list of :class:`~llamo_plugin.records.MolGraph` -> :class:`GraphBatch`
- :mod:`.gin`        5-layer GIN over OGB features; returns all node-state levels
- :mod:`.projector`  multi-level cross-attention projector -> ``[B, 28, d_llm]`` graph tokens
- :mod:`.module`     GIN + projector behind one fixed tensor signature (the ONNX boundary)
"""
