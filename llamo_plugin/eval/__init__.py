"""Evaluation: MolT5-protocol caption metrics, task evaluators and nearest-neighbour look-ups."""
