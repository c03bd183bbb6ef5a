"""Checkpoints: our model-directory format and the official LLaMo checkpoint converter."""
