"""Annotator: the columns the nodes and ``llamo annotate`` append, row by row."""

from __future__ import annotations

import math
from typing import Any

import pytest

from llamo_plugin.annotate import (
    ERROR_COLUMN,
    HARTREE_TO_EV,
    AnnotateOptions,
    Annotator,
    RowError,
    output_columns,
)
from llamo_plugin.chem.opsin import java_available
from llamo_plugin.errors import ConfigError
from llamo_plugin.pipeline import Pipeline

TABLE = ["CCO", None, "C1CC(", "", "OCC", "c1ccccc1O", "[Na+].[Cl-]"]


def _annotator(model: Any, **opts: Any) -> Annotator:
    return Annotator(Pipeline(model, chunk_size=4), AnnotateOptions(**opts))


def test_columns_declared_match_columns_produced(tiny_model: Any) -> None:
    opts = {
        "tasks": ("description", "property", "qa"),
        "question": "How many rings?",
        "add_ev": True,
        "nearest_neighbour": True,
    }
    ann = _annotator(tiny_model, **opts)
    out = ann.annotate(TABLE)
    assert list(out) == [name for name, _ in output_columns(AnnotateOptions(**opts))]
    assert all(len(v) == len(TABLE) for v in out.values())
    errors = out[ERROR_COLUMN]
    assert [e is None for e in errors] == [True, False, False, False, True, True, True]
    for col, values in out.items():
        if col != ERROR_COLUMN:
            assert all(values[i] is None for i in (1, 2, 3)), col  # missing, not made up
    assert out["description"][0] == out["description"][4]  # CCO == OCC
    assert out["nn_similarity"][0] is not None and 0 <= out["nn_similarity"][0] <= 1
    for h, ev in zip(out["homo_hartree"], out["homo_ev"], strict=True):
        assert (h is None) == (ev is None)
        if h is not None:
            assert math.isclose(ev, h * HARTREE_TO_EV)
    s = ann.stats.as_dict()
    assert s["rows"] == 7 and sum(s["errors"].values()) == 3
    assert s["errors"] == {"missing": 1, "unparseable": 1, "empty": 1}


def test_question_column_and_missing_question(tiny_model: Any) -> None:
    ann = _annotator(tiny_model, tasks=("qa",), question_column="q")
    out = ann.annotate(["CCO", "CCO", "CCO"], questions=["Rings?", None, "Charge?"])
    assert out["answer"][1] is None and out[ERROR_COLUMN][1] == "missing instruction"
    assert out["answer"][0] is not None and out["answer"][2] is not None


def test_fail_on_error_names_the_row(tiny_model: Any) -> None:
    ann = _annotator(tiny_model, tasks=("description",), fail_on_error=True)
    with pytest.raises(RowError, match=r"row 2 .*C1CC\("):
        ann.annotate(["CCO", "CC", "C1CC("])


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError):
        AnnotateOptions(tasks=("summarise",))
    with pytest.raises(ConfigError):
        AnnotateOptions(tasks=("qa",))
    with pytest.raises(ConfigError):
        AnnotateOptions(properties=("dipole",))
    with pytest.raises(ConfigError, match="unknown"):
        AnnotateOptions.from_dict({"tasks": ["iupac"], "fallback": True})


@pytest.mark.skipif(not java_available(), reason="OPSIN needs Java")
def test_iupac_roundtrip_and_fallback(tiny_model: Any) -> None:
    smiles = ["CCO", "c1ccccc1O", "not smiles"]
    plain = _annotator(tiny_model, tasks=("iupac",), iupac_fallback=False).annotate(smiles)
    # A random tiny model's names do not parse back to the molecule.
    assert plain["iupac_source"][:2] == ["model", "model"]
    assert all(s != "exact" for s in plain["iupac_roundtrip"][:2])
    assert plain["iupac_name"][2] is None and plain["iupac_roundtrip"][2] is None
    ann = _annotator(tiny_model, tasks=("iupac",))
    out = ann.annotate(smiles)
    assert out["iupac_source"][:2] == ["openclatura", "openclatura"]
    assert out["iupac_roundtrip"][:2] == ["exact", "exact"]
    assert out["iupac_name"][0] == "ethanol" and out["iupac_name"][1] == "phenol"
    assert ann.stats.iupac_fallbacks == 2
