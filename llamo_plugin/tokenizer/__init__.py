"""Tokenizers for our own (small) LLaMo models; the official model uses Llama-2's."""
