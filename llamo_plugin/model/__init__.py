"""LLaMo = graph tokenizer (GIN + projector) + any Hugging Face causal LM; greedy decoding."""
