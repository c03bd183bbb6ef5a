"""The drug-like PubChem gap builder: its own answer format and instructions, skeleton splits."""

from __future__ import annotations

import re

from llamo_plugin.train.build_pubchem_gap import (
    ANSWER_FORMAT,
    INSTRUCTIONS,
    GapRow,
    format_gap_ev,
    split_rows,
)
from llamo_plugin.train.sources import mol_identity


def _row(smiles: str, gap: float) -> GapRow:
    ident = mol_identity(smiles)
    assert ident is not None
    return GapRow(ident.smiles, gap, ident.inchikey)


def test_answer_format_and_instructions_are_not_qm9s() -> None:
    assert format_gap_ev(5.734) == "5.73" and format_gap_ev(12.0) == "12.00"
    assert re.fullmatch(ANSWER_FORMAT, format_gap_ev(5.734))
    assert all("eV" in i and "PubChem" in i for i in INSTRUCTIONS)  # never QM9's gap question


def test_stereoisomers_share_a_split() -> None:
    base = ["CC(N)C(=O)O", "C[C@H](N)C(=O)O", "C[C@@H](N)C(=O)O"]
    others = ["CCO", "CCCO", "CCCCO", "c1ccccc1", "Cc1ccccc1", "CCN", "CCCN", "OCC(O)CO"]
    rows = [_row(s, 5.0 + i) for i, s in enumerate(base + others)]
    for n in range(3):
        splits = split_rows(rows, n_test=n, n_val=2)
        where = {r.smiles: name for name, items in splits.items() for r in items}
        alanine = {where[_row(s, 0).smiles] for s in base}
        assert len(alanine) == 1  # one skeleton, one split
        assert sum(len(v) for v in splits.values()) == len(rows)
        assert len({r.inchikey[:14] for r in splits["test"]}) == n
