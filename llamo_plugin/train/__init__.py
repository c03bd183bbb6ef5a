"""Training-data builders: instruction records for every task, leak-free by construction.

One module per stage:

- :mod:`~llamo_plugin.train.records` -- the :class:`InstructionRecord` and JSONL helpers;
- :mod:`~llamo_plugin.train.sources` -- readers of the datasets under ``../shared/data``;
- :mod:`~llamo_plugin.train.splits` -- the molecule-level held-out slices (val/test);
- :mod:`~llamo_plugin.train.exclusion` -- InChIKeys that never enter training;
- ``build_description``, ``build_property``, ``build_iupac``, ``build_qa``, ``build_facts`` --
  one builder per task, each ``build(data_dir, out_dir, *, seed, ...) -> BuildStats``;
- :mod:`~llamo_plugin.train.build_all` -- everything into one folder with a manifest.

Nothing here runs at import time; RDKit, openclatura and OPSIN are imported where used.
"""

from __future__ import annotations

from llamo_plugin.train.records import InstructionRecord, read_jsonl, write_jsonl

__all__ = ["InstructionRecord", "read_jsonl", "write_jsonl"]
