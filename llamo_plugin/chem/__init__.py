"""Chemistry stage: pure numpy + RDKit, no torch.

- :mod:`.smiles`     parse and canonicalise (the only place RDKit's ``None`` becomes an error)
- :mod:`.featurize`  OGB atom/bond integer features
- :mod:`.motifs`     the 73-dim functional-group vectors of LLaMo's motif branch
"""
