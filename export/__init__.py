"""ONNX export of the graph tokenizer (GIN + projector) — issue 4.

The export boundary is :class:`llamo_plugin.graph.module.GraphTokenizer`, whose fixed tensor
signature (``GRAPH_INPUT_NAMES``) is designed for a dynamic-shape export.
"""
