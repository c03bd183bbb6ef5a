"""IUPAC names are kept only where OPSIN parses them back to the identical structure."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from llamo_plugin.train import build_iupac
from llamo_plugin.train.build_iupac import EXACT, compare, name_molecules, read_cache


@pytest.mark.parametrize(
    ("smiles", "opsin", "status"),
    [
        ("CC(O)CC", "C(C)C(C)O", EXACT),
        ("C[C@H](O)CC", "CC[C@H](C)O", EXACT),
        ("C[C@H](O)CC", "CC[C@@H](C)O", "stereo_differs"),
        ("C[C@H](O)CC", "CCC(C)O", "stereo_differs"),
        ("CC(O)CC", "CCCCO", "mismatch"),
        ("CC(O)CC", "", "unparsed"),
    ],
)
def test_compare(smiles: str, opsin: str, status: str) -> None:
    assert compare(smiles, opsin) == status


needs_opsin = pytest.mark.skipif(
    shutil.which("java") is None
    or importlib.util.find_spec("py2opsin") is None
    or importlib.util.find_spec("openclatura") is None,
    reason="needs Java, py2opsin and openclatura",
)


@needs_opsin
def test_only_exact_round_trips_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    smiles = ["CCC(C)O", "OC1CCCC1", "CC(=O)Oc1ccccc1C(=O)O", "CCCN", "CC#N"]
    real = build_iupac.generate_name

    def namer(s: str) -> tuple[str, str]:
        if s == "CCCN":
            return "propan-2-amine", ""  # a wrong name: parses, but to another structure
        if s == "CC#N":
            return "not-a-real-name-yl", ""  # OPSIN cannot parse it
        return real(s)

    monkeypatch.setattr(build_iupac, "generate_name", namer)
    cache = tmp_path / "names.tsv"
    results, timing = name_molecules(smiles, cache)
    assert results["CCC(C)O"].status == EXACT and results["CCC(C)O"].name == "butan-2-ol"
    assert results["OC1CCCC1"].status == EXACT
    assert results["CC(=O)Oc1ccccc1C(=O)O"].status == EXACT
    assert results["CCCN"].status == "mismatch"
    assert results["CC#N"].status == "unparsed"
    assert timing["named"] == 5

    # a rerun comes from the cache: nothing is named again
    monkeypatch.setattr(build_iupac, "generate_name", lambda s: pytest.fail("not cached"))
    again, timing = name_molecules(smiles, cache)
    assert again == results and timing["named"] == 0
    assert set(read_cache(cache)) == set(smiles)
