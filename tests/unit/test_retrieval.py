"""Nearest-neighbour look-ups: Tanimoto on Morgan fingerprints, self-exclusion, bundled set."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamo_plugin.retrieval import NearestNeighbours, bundled_table_path


@pytest.fixture()
def small() -> NearestNeighbours:
    return NearestNeighbours(
        ["1", "2", "3", "4"],
        ["CCO", "CCCO", "c1ccccc1", "not a smiles"],
        ["ethanol caption", "propanol caption", "benzene caption", "broken"],
    )


def test_query_and_exclusions(small: NearestNeighbours) -> None:
    assert len(small) == 3 and small.n_skipped == 1
    hit, bad = small.query(["OCC", "xyz"])
    assert bad is None
    assert hit.similarity == 1.0 and hit.cid == "1" and hit.caption == "ethanol caption"
    assert hit.smiles == "CCO"
    loo = small.query(["OCC"], exclude_identical=True)[0]
    assert loo.cid == "2" and 0 < loo.similarity < 1
    by_id = small.query(["CCO"], exclude_cids=[["1"]])[0]
    assert by_id.cid == "2"
    only = NearestNeighbours(["1"], ["CCO"], ["x"])
    assert only.query(["CCO"], exclude_identical=True) == [None]


def test_from_table_finds_columns(tmp_path: Path) -> None:
    table = tmp_path / "mine.csv"
    table.write_text('ID,SMILES,Description\nA,CCO,"an alcohol, short"\nB,c1ccccc1,arene\n')
    nn = NearestNeighbours.from_table(table)
    assert nn.query(["c1ccccc1O"])[0].cid == "B"
    assert nn.captions[0] == "an alcohol, short"
    with pytest.raises(ValueError, match="nope"):
        NearestNeighbours.from_table(table, caption_column="nope")


def test_bundled_reference_set() -> None:
    nn = NearestNeighbours.from_table()
    assert len(nn) == 3301 and nn.n_skipped == 0
    assert all(c.startswith("The molecule is") for c in nn.captions[:50])
    assert (bundled_table_path().parent / "ATTRIBUTION.md").is_file()


def test_bundled_set_holds_no_test_molecule(shared_dir: Path) -> None:
    from rdkit import Chem

    from llamo_plugin.eval.common import read_tsv

    test = read_tsv(shared_dir / "data" / "chebi-20" / "test.txt")
    bundled = read_tsv(bundled_table_path())
    assert not {r["CID"] for r in test} & {r["cid"] for r in bundled}
    test_smiles = {Chem.MolToSmiles(Chem.MolFromSmiles(r["SMILES"])) for r in test}
    assert not test_smiles & {r["smiles"] for r in bundled}


def test_query_k_orders_and_leaves_out_other_forms() -> None:
    from llamo_plugin.retrieval import neighbours_label, with_retrieved

    nn = NearestNeighbours(
        ["lact-L", "lact-D", "lactate", "pyr", "ace"],
        ["C[C@H](O)C(=O)O", "C[C@@H](O)C(=O)O", "CC(O)C(=O)[O-]", "CC(=O)C(=O)O", "CC(=O)O"],
        ["L-lactic acid", "D-lactic acid", "lactate", "pyruvic acid", "acetic acid"],
    )
    hits = nn.query_k(["C[C@H](O)C(=O)O", "not smiles"], 3)
    assert hits[1] is None
    assert hits[0][0].cid == "lact-L" and len(hits[0]) == 3
    sims = [h.similarity for h in hits[0]]
    assert sims == sorted(sims, reverse=True)
    same = nn.query_k(["C[C@H](O)C(=O)O"], 5, leave_out="identical")[0]
    assert "lact-L" not in {h.cid for h in same} and "lact-D" in {h.cid for h in same}
    # leave-one-out: no stereoisomer, no other protonation state of the molecule itself
    loo = nn.query_k(["C[C@H](O)C(=O)O"], 5, leave_out="skeleton")[0]
    assert {h.cid for h in loo} == {"pyr", "ace"}
    with pytest.raises(ValueError):
        nn.query_k(["CCO"], 0)
    instructions, used = with_retrieved(nn, ["CC(=O)C(=O)O", "xx"], "Describe it.", 2)
    assert instructions[1] == "Describe it."  # unparseable: left for the pipeline to report
    assert instructions[0].startswith("Similar molecules: [1] CC(=O)C(=O)O (similarity 1.00)")
    assert instructions[0].endswith("Describe it.") and "[2]" in instructions[0]
    assert neighbours_label(used[0]).startswith("pyr (1.00); ")
    assert neighbours_label(used[1]) is None


def test_checksum_follows_content() -> None:
    a = NearestNeighbours(["1"], ["CCO"], ["x"])
    assert a.checksum == NearestNeighbours(["1"], ["OCC"], ["x"]).checksum  # same canonical
    assert a.checksum != NearestNeighbours(["1"], ["CCO"], ["y"]).checksum
