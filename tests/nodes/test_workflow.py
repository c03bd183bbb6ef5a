"""A KNIME workflow of the five LLaMo nodes, walked the way KNIME walks it.

Model Selector -> Molecule Description -> Molecular Property Prediction -> IUPAC Name ->
Molecule Q&A, each through the harness in KNIME's order (defaults saved, dialog schemas
built from the input specs, settings picked in the dialog and validated, ``validate_specs``,
configure, settings re-read, execute), on a table whose molecules are a KNIME SMILES column,
stored in batches of a fixed size; then the same on a zero-row and a one-row table.
"""

from __future__ import annotations

from typing import Any

import knime.extension as knext
import pandas as pd
import pytest
from knime.types.chemistry import SmilesValue

from llamo_plugin.chem.opsin import java_available

from . import harness
from .harness import JavaSide, load_extension, run

ext = load_extension()

KNIME_ORDER = [
    "extract_parameters",  # a new node saves its defaults
    "extract_schema",  # the dialog, from the input specs
    "extract_ui_schema",
    "validate_parameters",  # applying the dialog
    "inject_parameters",  # configure
    "validate_specs",
    "configure",
    "extract_parameters",  # KNIME re-reads the settings after configure
    "inject_parameters",  # execute, in a fresh instance
    "execute",
]
SMILES = ["CCO", "c1ccccc1O", None, "CC(=O)O", "C1CC(", "CCO", "NCC(=O)O", "OCC(O)CO"]
QUESTIONS = ["How many rings?", "What is the formula?"] * 3 + [None, "How many rings?"]
BAD = [s is None or s == "C1CC(" for s in SMILES]
NEW_COLUMNS = [
    "Description",
    "HOMO (Hartree)",
    "HOMO (eV)",
    "IUPAC name",
    "IUPAC name round trip",
    "IUPAC name source",
    "Answer",
]


def molecules(start: int = 0, stop: int = len(SMILES)) -> Any:
    """KNIME's SMILES type in ``structure``, plus strings (one named like SMILES); rows
    ``start:stop`` (an empty table keeps its column types, as in KNIME)."""
    frame = pd.DataFrame(
        {
            "id": [f"m{i}" for i in range(len(SMILES))],
            "structure": pd.Series(
                [None if s is None else SmilesValue(s) for s in SMILES], dtype=object
            ),
            "smiles_note": ["typed column wins"] * len(SMILES),
            "question": QUESTIONS,
        }
    )
    data = knext.Table.from_pandas(frame).to_pyarrow()
    return knext.Table.from_pyarrow(data.slice(start, stop - start))


def walk(table: Any, qa_settings: dict[str, Any]) -> tuple[Any, list[JavaSide]]:
    """The five nodes in a chain; each node's output table is the next node's input."""
    javas = [JavaSide() for _ in range(4)]
    model = run(ext.ModelSelector)
    assert harness.TRACE == KNIME_ORDER
    steps = [
        (ext.MoleculeDescription, {}),
        (ext.PropertyPrediction, {"lumo": False, "gap": False, "add_ev": True}),
        (ext.IupacName, {"fallback": java_available()}),
        (ext.MoleculeQA, qa_settings),
    ]
    for (factory, settings), java in zip(steps, javas, strict=True):
        table = run(factory, model, table, settings=settings, java=java)
        assert harness.TRACE == KNIME_ORDER
    return table, javas


@pytest.fixture
def batches_of_three(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "BATCH_ROWS", 3)


@pytest.mark.usefixtures("batches_of_three")
def test_workflow_on_a_smiles_typed_table() -> None:
    out, javas = walk(molecules(), {"question_column": "question"})
    frame = out.to_pandas()

    assert [b.num_rows for b in out.batches()] == [3, 3, 2]  # every node kept the batch size
    assert list(frame.index) == [f"Row{i}" for i in range(8)]
    assert list(frame.columns[:4]) == ["id", "structure", "smiles_note", "question"]
    types = {c.name: c.ktype for c in out.schema}
    assert types["structure"] == knext.logical(SmilesValue)  # carried through unchanged
    assert types["HOMO (Hartree)"] == types["HOMO (eV)"] == knext.double()
    assert "LUMO (Hartree)" not in types  # unticked in the dialog
    assert [None if v is None else str(v) for v in frame["structure"]] == SMILES

    ok = [not bad for bad in BAD]
    for column in ("LLaMo error", "LLaMo error (#1)", "LLaMo error (#2)"):  # per node
        assert frame[column].notna().tolist() == BAD, column
    qa_errors = frame["LLaMo error (#3)"].notna().tolist()
    assert qa_errors == [bad or q is None for bad, q in zip(BAD, QUESTIONS, strict=True)]
    for column in NEW_COLUMNS[:-1]:
        assert frame[column].notna().tolist() == ok, column
    assert frame["Answer"].notna().tolist() == [
        good and q is not None for good, q in zip(ok, QUESTIONS, strict=True)
    ]
    assert frame.loc["Row0", "Description"] == frame.loc["Row5", "Description"]  # same molecule
    assert set(frame["IUPAC name round trip"].dropna()) <= {
        "exact",
        "stereo_differs",
        "different_structure",
        "unparseable",
    }
    assert frame["LLaMo model"].str.contains("sha256:").all()
    # The applicability domain: known for every valid molecule, missing for bad rows.
    domain = frame["LLaMo domain"]
    assert domain.notna().tolist() == ok
    assert all(v == "in_domain" or v.startswith("outside: ") for v in domain.dropna())
    for java in javas:
        assert java.progress[-1][0] == 1.0 and len(java.progress) == 3  # once per batch


def test_workflow_on_a_zero_row_table() -> None:
    out, _ = walk(molecules(0, 0), {"question_column": "question"})
    assert out.num_rows == 0
    assert out.num_batches == 1  # the first node wrote one empty batch; the rest kept it
    types = {c.name: c.ktype for c in out.schema}
    assert set(NEW_COLUMNS) <= set(types) and types["HOMO (eV)"] == knext.double()
    assert types["structure"] == knext.logical(SmilesValue)


def test_workflow_on_a_one_row_table() -> None:
    out, _ = walk(molecules(3, 4), {"question_column": knext.ColumnParameter.NONE})
    frame = out.to_pandas()
    assert list(frame.index) == ["Row3"] and out.num_batches == 1
    assert frame[NEW_COLUMNS].notna().all(axis=None)  # "<none>": the question for every row
    assert frame.filter(like="LLaMo error").isna().all(axis=None)
