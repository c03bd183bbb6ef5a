"""Prompt stage: chat template, tokenisation with graph slots, batching and the splice.

- :mod:`.templates`  LLaMo's Llama-2 chat format and system message (reference §6)
- :mod:`.assemble`   conversation -> ids with ``num_graph_tokens`` slots; left/right padding;
  the count-checked splice of graph tokens into token embeddings
"""
