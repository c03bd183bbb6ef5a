"""ONNX export of the graph tokenizer (GIN + projector), shipped with the library for
``llamo export-onnx``; the tools around it live in the top-level ``export/`` folder.

The export boundary is :class:`llamo_plugin.graph.module.GraphTokenizer`, whose fixed tensor
signature (``GRAPH_INPUT_NAMES``) is designed for a dynamic-shape export.
"""
