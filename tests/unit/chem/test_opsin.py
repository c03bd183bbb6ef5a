"""OPSIN round trip of IUPAC names against SMILES (real OPSIN jar; skips without Java)."""

from __future__ import annotations

import pytest

from llamo_plugin.chem.opsin import (
    compare_structures,
    java_available,
    names_to_smiles,
    opsin_jar,
    roundtrip_status,
)

needs_java = pytest.mark.skipif(not java_available(), reason="Java (for OPSIN) not installed")


def test_bundled_jar_is_found() -> None:
    assert opsin_jar().name.startswith("opsin-cli-2.9.0")


def test_compare_structures_without_opsin() -> None:
    assert compare_structures("OCC", "CCO") == "exact"
    assert compare_structures("C[C@H](O)CC", "C[C@@H](CC)O") == "exact"  # same centre
    assert compare_structures("C[C@H](O)CC", "C[C@@H](O)CC") == "stereo_differs"
    assert compare_structures("C[C@H](O)CC", "CC(O)CC") == "stereo_differs"
    assert compare_structures("CCCO", "CCO") == "different_structure"
    assert compare_structures(None, "CCO") == "unparseable"
    assert compare_structures("CCO", "not a smiles") == "invalid_smiles"


@needs_java
def test_roundtrip_statuses_on_hand_picked_names() -> None:
    names = [
        "ethanol",  # exact
        "propan-1-ol",  # a real name, another molecule
        "florbelguzzle acid",  # not a name
        "(2R)-butan-2-ol",  # R against its S enantiomer
        "(2R)-butan-2-ol",  # R against a SMILES without stereo
        "butan-2-ol",  # no stereo against a defined centre
        "(2S)-butan-2-ol",  # exact with stereo: C[C@H](O)CC is S
        "",  # empty answer
        None,  # missing answer
        "2,2,3-triethyloxirane",
    ]
    smiles = [
        "CCO",
        "CCO",
        "CCO",
        "C[C@H](O)CC",
        "CC(O)CC",
        "C[C@H](O)CC",
        "C[C@H](O)CC",
        "CCO",
        "CCO",
        "CCC1C(O1)(CC)CC",
    ]
    assert roundtrip_status(names, smiles) == [
        "exact",
        "different_structure",
        "unparseable",
        "stereo_differs",
        "stereo_differs",
        "stereo_differs",
        "exact",
        "unparseable",
        "unparseable",
        "exact",
    ]


@needs_java
def test_batch_keeps_alignment_and_unicode() -> None:
    got = names_to_smiles(["benzene", "bad\nname", "4,4′-bipyridine", "", "methane"])
    assert got[0] == "C1=CC=CC=C1"
    assert got[1] is None  # a newline inside a name must not shift later rows
    assert got[2] is not None and compare_structures(got[2], "c1cc(-c2ccncc2)ccn1") == "exact"
    assert got[3] is None and got[4] == "C"
    assert names_to_smiles([]) == []
    with pytest.raises(ValueError):
        roundtrip_status(["ethanol"], [])
