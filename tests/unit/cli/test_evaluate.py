"""``llamo evaluate`` end to end with a tiny random model saved to disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llamo_plugin.cli.main import main
from llamo_plugin.eval.common import PREDICTION_COLUMNS, read_tsv


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llamo_plugin.checkpoint.format import save_model
    from llamo_plugin.model.factory import tiny_random_model

    path = tmp_path_factory.mktemp("evaluate") / "tiny"
    save_model(tiny_random_model(seed=0), path)
    return path


def _outputs(
    out: Path, task: str, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    printed = json.loads(capsys.readouterr().out)
    metrics = json.loads((out / f"{task}.json").read_text())
    assert printed == metrics and metrics["task"] == task
    rows = read_tsv(out / f"{task}_predictions.tsv")
    assert rows and list(rows[0])[:4] == list(PREDICTION_COLUMNS)
    return metrics, rows


def test_property_with_a_split_file(model_dir: Path, tmp_path: Path, capsys) -> None:
    split = tmp_path / "split.csv"
    split.write_text(
        "smiles,homo,lumo,gap\nC,-0.3877,0.1171,0.5048\nN,-0.2570,0.0829,0.3399\n"
        "not-a-smiles,-0.1,0.1,0.2\nCCO,-0.2,0.1,0.3\n"
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "evaluate",
                "--task",
                "property",
                "--model",
                str(model_dir),
                "--limit",
                "3",
                "--property-test",
                str(split),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    metrics, rows = _outputs(out, "property", capsys)
    assert len(rows) == 9  # 3 molecules x 3 targets
    assert {r["target"] for r in rows} == {"homo", "lumo", "gap"}
    homo = metrics["targets"]["homo"]
    assert homo["n"] == 3 and homo["n_parsed"] + homo["n_unparseable"] == 3
    assert homo["n_unparseable"] >= 1  # the invalid SMILES counts as a failure
    assert metrics["model"]["name"] == "tiny-random"


def test_qa_with_a_jsonl_file(model_dir: Path, tmp_path: Path, capsys) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        "".join(
            json.dumps({"smiles": s, "question": "How many rings?", "answer": a, "qtype": t}) + "\n"
            for s, a, t in [
                ("c1ccccc1", "1", "rings"),
                ("CCO", "0", "rings"),
                ("CCO", "yes", "alcohol"),
            ]
        )
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "evaluate",
                "--task",
                "qa",
                "--model",
                str(model_dir),
                "--qa-file",
                str(qa),
                "--max-new-tokens",
                "4",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    metrics, rows = _outputs(out, "qa", capsys)
    assert metrics["n"] == 3 and set(metrics["per_type"]) == {"rings", "alcohol"}
    assert {r["status"] for r in rows} <= {"correct", "wrong"}


def test_description_limit_5(model_dir: Path, tmp_path: Path, shared_dir: Path, capsys) -> None:
    from llamo_plugin.eval.wordnet import is_installed

    if not is_installed():
        pytest.skip("WordNet is not set up")
    out = tmp_path / "out"
    assert (
        main(
            [
                "evaluate",
                "--task",
                "description",
                "--model",
                str(model_dir),
                "--limit",
                "5",
                "--max-new-tokens",
                "8",
                "--data-dir",
                str(shared_dir / "data"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    metrics, rows = _outputs(out, "description", capsys)
    assert metrics["n"] == 5 and len(rows) == 5 and metrics["source"] == "model"
    assert {"bleu2", "bleu4", "meteor", "rouge1", "rouge2", "rougeL"} <= set(metrics)
    assert all(r["nn_caption"].startswith("The molecule") for r in rows)
    assert all(0 < float(r["nn_similarity"]) <= 1 for r in rows)


def test_nearest_neighbour_baseline(tmp_path: Path, shared_dir: Path, capsys) -> None:
    from llamo_plugin.eval.wordnet import is_installed

    if not is_installed():
        pytest.skip("WordNet is not set up")
    out = tmp_path / "out"
    assert (
        main(
            [
                "evaluate",
                "--task",
                "description",
                "--baseline",
                "nearest-neighbour",
                "--limit",
                "5",
                "--data-dir",
                str(shared_dir / "data"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    metrics, rows = _outputs(out, "description", capsys)
    assert metrics["source"] == "baseline" and metrics["n"] == 5
    assert [r["prediction"] for r in rows] == [r["nn_caption"] for r in rows]


def test_description_on_reference_records(tmp_path: Path, shared_dir: Path, capsys) -> None:
    """Model selection scores against held-out records, not the test split."""
    from llamo_plugin.eval.wordnet import is_installed

    if not is_installed():
        pytest.skip("WordNet is not set up")
    records = tmp_path / "val.jsonl"
    records.write_text(
        "".join(
            json.dumps({"smiles": s, "answer": a}) + "\n"
            for s, a in [("CCO", "The molecule is ethanol."), ("CC(=O)O", "The molecule is acid.")]
        )
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "evaluate",
                "--task",
                "description",
                "--baseline",
                "nearest-neighbour",
                "--references",
                str(records),
                "--data-dir",
                str(shared_dir / "data"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    metrics, rows = _outputs(out, "description", capsys)
    assert metrics["n"] == 2
    assert [r["reference"] for r in rows] == ["The molecule is ethanol.", "The molecule is acid."]


def test_iupac_on_stout(model_dir: Path, tmp_path: Path, shared_dir: Path, capsys) -> None:
    from llamo_plugin.chem.opsin import java_available

    if not java_available():
        pytest.skip("Java (for OPSIN) not installed")
    out = tmp_path / "out"
    assert (
        main(
            [
                "evaluate",
                "--task",
                "iupac",
                "--model",
                str(model_dir),
                "--limit",
                "2",
                "--iupac-sets",
                "stout",
                "chemllmbench",
                "--max-new-tokens",
                "6",
                "--data-dir",
                str(shared_dir / "data"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    metrics, rows = _outputs(out, "iupac", capsys)
    assert set(metrics["sets"]) == {"stout", "chemllmbench"} and len(rows) == 4
    assert metrics["all"]["n"] == 4 and metrics["all"]["n_with_reference"] == 4


def test_usage_errors(tmp_path: Path, caplog) -> None:
    out = str(tmp_path / "out")
    assert main(["evaluate", "--task", "qa", "--out", out]) == 2
    assert "--qa-file" in caplog.text
    assert (
        main(["evaluate", "--task", "property", "--baseline", "nearest-neighbour", "--out", out])
        == 2
    )
    assert (
        main(
            [
                "evaluate",
                "--task",
                "property",
                "--property-test",
                str(tmp_path / "missing.csv"),
                "--out",
                out,
            ]
        )
        == 2
    )
    assert "not found" in caplog.text
    assert (
        main(["evaluate", "--task", "description", "--data-dir", str(tmp_path), "--out", out]) == 2
    )
    assert not (tmp_path / "out").exists()
