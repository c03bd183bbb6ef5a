"""LLaMo = graph tokenizer (GIN + projector) + any Hugging Face causal LM, with transformers'
``generate`` as its reference greedy decoding (the product decodes with
:mod:`llamo_plugin.backends.hf`)."""
