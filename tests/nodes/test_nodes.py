"""The LLaMo nodes, run through the knime.extension stand-in on real tables."""

from __future__ import annotations

import random
from pathlib import Path

import knime.extension as knext
import pandas as pd
import pytest
from knime.types.chemistry import SmilesValue

from llamo_plugin.chem.opsin import java_available

from . import harness
from .harness import JavaSide, load_extension, registered_nodes, run

ext = load_extension()

VALID = [
    "CCO",
    "c1ccccc1O",
    "CC(=O)Oc1ccccc1C(=O)O",
    "CCN(CC)CC",
    "OCC(O)CO",
    "C",
    "CC#N",
    "c1ccncc1",
    "CC(C)O",
    "O=C=O",
    "NCC(=O)O",
    "C[C@H](N)C(=O)O",
]
SALTS = ["[Na+].[Cl-]", "C[N+](C)(C)C.[Br-]"]
BAD = ["C1CC(", "not a smiles", "Xx"]


def _table_200() -> pd.DataFrame:
    rng = random.Random(0)
    pool = VALID + SALTS
    rows = []
    for i in range(200):
        r = rng.random()
        if r < 0.08:
            smi = None
        elif r < 0.12:
            smi = ""
        elif r < 0.2:
            smi = rng.choice(BAD)
        else:
            smi = rng.choice(pool)  # duplicates on purpose
        rows.append({"id": f"m{i}", "SMILES": smi, "Description": "already here"})
    return pd.DataFrame(rows)


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "BATCH_ROWS", 64)


def test_nodes_are_registered_with_stable_ids_and_docs() -> None:
    ids = {"llamo-model-selector", "llamo-description", "llamo-property", "llamo-iupac", "llamo-qa"}
    nodes = registered_nodes()
    assert ids <= set(nodes)
    root = harness.ROOT  # icon paths are relative to the folder holding knime.yml
    for node_id in ids:
        info = nodes[node_id]
        assert info.short_description and info.short_description.endswith(".")
        assert (root / info.icon_path).is_file(), info.icon_path
        assert info.category == "/community/llamo"


def test_workflow_on_a_200_row_table() -> None:
    df = _table_200()
    table = knext.Table.from_pandas(df)
    model = run(ext.ModelSelector)
    described = run(ext.MoleculeDescription, model, table)
    props = run(ext.PropertyPrediction, model, described, settings={"add_ev": True})
    named = run(ext.IupacName, model, props, settings={"fallback": java_available()})
    answered = run(ext.MoleculeQA, model, named)
    out = answered.to_pandas()

    assert len(out) == 200 and list(out.index) == [f"Row{i}" for i in range(200)]
    assert list(out.columns[:3]) == ["id", "SMILES", "Description"]  # input kept first
    assert (out["Description"] == "already here").all()  # never overwritten
    assert "Description (#1)" in out.columns  # collision handled
    bad = df["SMILES"].isna() | df["SMILES"].isin(["", *BAD])
    errors = out["LLaMo error"]
    assert list(errors.notna()) == list(bad)
    new_cols = [
        c
        for c in out.columns
        if c not in ("id", "SMILES", "Description", "LLaMo error", "LLaMo model")
        and not c.startswith("LLaMo error")
        and not c.startswith("LLaMo model")
    ]
    for col in new_cols:
        assert out.loc[bad.values, col].isna().all(), col
    assert out.loc[~bad.values, "Description (#1)"].notna().all()
    for col in ("HOMO (Hartree)", "LUMO (eV)", "HOMO-LUMO gap (Hartree)"):
        assert out[col].dtype == "float64"
    # duplicates get identical answers
    ok = out[~bad.values]
    for _, group in ok.groupby("SMILES"):
        assert group["Description (#1)"].nunique() == 1 and group["Answer"].nunique() == 1
    statuses = set(out.loc[~bad.values, "IUPAC name round trip"].dropna())
    assert statuses <= {"exact", "stereo_differs", "different_structure", "unparseable"}
    assert out.loc[~bad.values, "LLaMo model"].str.contains("sha256:").all()


def test_same_values_as_the_cli(tmp_path: Path) -> None:
    from llamo_plugin.cli.main import main

    df = _table_200().drop(columns=["Description"]).head(60)
    table = knext.Table.from_pandas(df)
    model = run(ext.ModelSelector)
    fallback = java_available()
    nodes = {
        "description": run(ext.MoleculeDescription, model, table).to_pandas(),
        "property": run(ext.PropertyPrediction, model, table).to_pandas(),
        "iupac": run(ext.IupacName, model, table, settings={"fallback": fallback}).to_pandas(),
        "qa": run(ext.MoleculeQA, model, table).to_pandas(),
    }
    src, dst = tmp_path / "in.csv", tmp_path / "out.parquet"
    df.to_csv(src, index=False)
    args = [
        "annotate",
        str(src),
        "-o",
        str(dst),
        "--tasks",
        "description,property,iupac,qa",
        "--no-cache",
        "--question",
        ext.MoleculeQA().question,
    ]
    if not fallback:
        args.append("--no-iupac-fallback")
    assert main(args) == 0
    cli = pd.read_parquet(dst).reset_index(drop=True)
    pairs = [
        ("description", "description", "Description"),
        ("property", "homo_hartree", "HOMO (Hartree)"),
        ("property", "lumo_hartree", "LUMO (Hartree)"),
        ("property", "gap_hartree", "HOMO-LUMO gap (Hartree)"),
        ("iupac", "iupac_name", "IUPAC name"),
        ("iupac", "iupac_roundtrip", "IUPAC name round trip"),
        ("iupac", "iupac_source", "IUPAC name source"),
        ("qa", "answer", "Answer"),
    ]
    for task, cli_col, node_col in pairs:
        got = nodes[task][node_col].reset_index(drop=True).astype(object)
        want = cli[cli_col].astype(object)
        assert [None if pd.isna(v) else v for v in got] == [
            None if pd.isna(v) else v for v in want
        ], node_col
        assert list(nodes[task]["LLaMo error"].notna()) == list(cli["llamo_error"].notna())


def test_smiles_type_column_and_auto_selection() -> None:
    df = pd.DataFrame(
        {"name": ["a", "b"], "structure": pd.Series([SmilesValue("CCO"), None], dtype=object)}
    )
    model = run(ext.ModelSelector)
    out = run(
        ext.MoleculeQA, model, knext.Table.from_pandas(df), settings={"question": "How many rings?"}
    ).to_pandas()
    assert out["Answer"].notna().tolist() == [True, False]


def test_fail_mode_names_the_row() -> None:
    df = pd.DataFrame({"smiles": ["CCO", "C1CC("]}, index=["first", "second"])
    model = run(ext.ModelSelector)
    with pytest.raises(RuntimeError, match="RowID second"):
        run(
            ext.MoleculeDescription,
            model,
            knext.Table.from_pandas(df),
            settings={"on_missing": "FAIL"},
        )


def test_cancel_inside_execution() -> None:
    df = pd.DataFrame({"smiles": VALID * 10})
    # No answer cache: earlier tests' answers would be served without generating anything.
    model = run(ext.ModelSelector, settings={"answer_cache": False})
    with pytest.raises(RuntimeError, match="canceled"):
        run(
            ext.MoleculeDescription,
            model,
            knext.Table.from_pandas(df),
            java=JavaSide(cancel_after=5),
        )


def test_configure_errors() -> None:
    model = run(ext.ModelSelector)
    no_smiles = knext.Table.from_pandas(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(knext.InvalidParametersError, match="no string or SMILES"):
        run(ext.MoleculeDescription, model, no_smiles)
    with pytest.raises(knext.InvalidParametersError, match="at least one"):
        run(
            ext.PropertyPrediction,
            model,
            knext.Table.from_pandas(pd.DataFrame({"smiles": ["C"]})),
            settings={"homo": False, "lumo": False, "gap": False},
        )
    with pytest.raises(knext.InvalidParametersError, match="not a LLaMo model directory"):
        run(ext.ModelSelector, settings={"source": "LOCAL", "model_dir": "/nonexistent"})


def test_empty_table_gives_typed_empty_output() -> None:
    model = run(ext.ModelSelector)
    empty = knext.Table.from_pandas(pd.DataFrame({"smiles": pd.Series([], dtype="string")}))
    out = run(ext.PropertyPrediction, model, empty)
    assert out.num_rows == 0 and "HOMO (Hartree)" in out.column_names


def test_model_port_spec_is_forward_compatible() -> None:
    LlamoModelSpec = ext.LlamoModelSpec  # noqa: N806

    old = LlamoModelSpec.deserialize({"source": "embedded", "device": "cpu"})  # older workflow
    assert old.answer_cache is True and old.cache_path == "" and old.device == "cpu"
    # 0.1.0 wrote an empty server_url placeholder; since 0.4.0 the key means the LLaMo
    # server's URL, used only by the "server" source: such a port is still the embedded model
    placeholder = LlamoModelSpec.deserialize({"source": "embedded", "server_url": ""})  # 0.1.0
    assert placeholder.source == "embedded" and placeholder.server_url == ""
    assert placeholder.known and placeholder.server_credentials == ""
    placeholder.validate_context(None)  # no URL needed
    newer = LlamoModelSpec.deserialize({"source": "local", "model_dir": "/m", "retries": 3})
    assert newer.model_dir == "/m"  # unknown keys of a newer version are ignored
    assert LlamoModelSpec.deserialize(newer.serialize()).serialize() == newer.serialize()


def test_description_retrieval_settings(tmp_path: Path) -> None:
    import json

    from llamo_plugin.registry import embedded_model_dir

    model = run(ext.ModelSelector)
    config = json.loads((embedded_model_dir() / "llamo_config.json").read_text())
    default_on = bool(config.get("retrieval", {}).get("default", False))
    assert model.spec.retrieval is default_on
    assert ext.LlamoModelSpec.deserialize({"source": "embedded"}).retrieval is False  # old port
    table = knext.Table.from_pandas(pd.DataFrame({"smiles": ["CCO", "C1CC(", "c1ccccc1O"]}))
    auto = run(ext.MoleculeDescription, model, table).to_pandas()
    assert ("Description neighbours" in auto.columns) is default_on
    ref = tmp_path / "mine.tsv"
    ref.write_text("cid\tsmiles\tcaption\nX1\tCCO\tThe molecule is ethanol.\n"
                   "X2\tc1ccccc1\tThe molecule is benzene.\n")  # fmt: skip
    on = run(
        ext.MoleculeDescription,
        model,
        table,
        settings={"retrieval": "ON", "neighbours": 1, "reference_table": str(ref)},
    ).to_pandas()
    used = list(on["Description neighbours"])
    assert used[0] == "X1 (1.00)" and pd.isna(used[1]) and used[2].startswith("X2 (")
    off = run(ext.MoleculeDescription, model, table, settings={"retrieval": "OFF"}).to_pandas()
    assert "Description neighbours" not in off.columns
    missing = {"retrieval": "ON", "reference_table": str(tmp_path / "none.tsv")}
    with pytest.raises(knext.InvalidParametersError, match=r"reference table .* not a file"):
        run(ext.MoleculeDescription, model, table, settings=missing)
