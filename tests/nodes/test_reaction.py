"""The Reaction Prediction node: refused at configure for a model not trained for reactions
(the embedded one), run for a model that declares LLaMo's reaction tasks."""

from __future__ import annotations

from pathlib import Path

import knime.extension as knext
import pandas as pd
import pytest

from llamo_plugin.checkpoint.format import save_model
from llamo_plugin.tasks import OFFICIAL_TASKS

from .harness import load_extension, run

ext = load_extension()
REACTIONS = ["CCO.CC(=O)O", "c1ccccc1Br.OB(O)c1ccccc1", "not a reaction"]


@pytest.fixture(scope="module")
def reaction_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llamo_plugin.model.factory import tiny_random_model

    model = tiny_random_model(seed=0)
    model.config = model.config.replace(tasks=OFFICIAL_TASKS)  # as the converter writes it
    path = tmp_path_factory.mktemp("reaction") / "model"
    save_model(model, path)
    return path


def test_embedded_model_is_refused_at_configure() -> None:
    model = run(ext.ModelSelector)
    table = knext.Table.from_pandas(pd.DataFrame({"smiles": REACTIONS}))
    for direction, task in (("FORWARD", "forward"), ("RETRO", "retro")):
        with pytest.raises(knext.InvalidParametersError, match=f"not trained for the {task}"):
            run(ext.ReactionPrediction, model, table, settings={"direction": direction})


@pytest.mark.parametrize(("direction", "column"), [("FORWARD", "Predicted product"),
                                                   ("RETRO", "Predicted reactants")])  # fmt: skip
def test_reaction_model_predicts_smiles_or_says_why(
    reaction_model_dir: Path, direction: str, column: str
) -> None:
    settings = {"source": "LOCAL", "model_dir": str(reaction_model_dir), "answer_cache": False}
    model = run(ext.ModelSelector, settings=settings)
    assert "forward" in model.spec.tasks and "retro" in model.spec.tasks
    table = knext.Table.from_pandas(pd.DataFrame({"smiles": REACTIONS}))
    out = run(ext.ReactionPrediction, model, table, settings={"direction": direction})
    frame = out.to_pandas()
    assert list(frame.columns[:2]) == ["smiles", column]
    errors = frame["LLaMo error"]
    assert errors.iloc[2].startswith("invalid_smiles")
    for value, error in zip(frame[column], errors, strict=True):
        # A random model's answer is rarely SMILES: then a missing value and the reason.
        assert (value is None or pd.isna(value)) == (error is not None and not pd.isna(error))
        if error is not None and not pd.isna(error):
            assert error.split(":")[0] in {"unparseable_answer", "invalid_smiles"}
