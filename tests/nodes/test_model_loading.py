"""A node run with a model directory reads each weight file once: the Model Selector's
execute verifies every sha256, the annotating nodes then check sizes only; the answer cache
is shared with the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import knime.extension as knext
import pandas as pd
import pytest

from llamo_plugin.checkpoint.format import save_model

from .harness import load_extension, run

ext = load_extension()


@pytest.fixture()
def model_dir(tiny_model: Any, tmp_path: Path) -> Path:
    path = tmp_path / "model"
    save_model(tiny_model, path)
    return path


def test_weights_hashed_once_per_workflow_run(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llamo_plugin.checkpoint import format as fmt

    monkeypatch.setenv("LLAMO_CACHE_DIR", str(tmp_path / "cache"))
    read: list[str] = []
    real = fmt.sha256_file
    monkeypatch.setattr(fmt, "sha256_file", lambda p, *a, **k: read.append(p.name) or real(p))
    files = json.loads((model_dir / "manifest.json").read_text())["files"]
    model = run(ext.ModelSelector, settings={"source": "LOCAL", "model_dir": str(model_dir)})
    assert sorted(read) == sorted(Path(f).name for f in files)  # full verification, once
    table = knext.Table.from_pandas(pd.DataFrame({"smiles": ["CCO", "c1ccccc1O"]}))
    described = run(ext.MoleculeDescription, model, table)
    run(ext.PropertyPrediction, model, described)
    assert len(read) == len(files)  # the annotating nodes read no weight file to hash it


def test_nodes_use_the_answer_cache(model_dir: Path, tmp_path: Path) -> None:
    from llamo_plugin.cache import AnswerCache

    cache = tmp_path / "answers.sqlite"
    settings = {"source": "LOCAL", "model_dir": str(model_dir), "cache_path": str(cache)}
    model = run(ext.ModelSelector, settings=settings)
    table = knext.Table.from_pandas(pd.DataFrame({"smiles": ["CCO", "OCC", "c1ccccc1O"]}))
    first = run(ext.MoleculeDescription, model, table).to_pandas()
    with AnswerCache(cache) as stored:
        assert len(stored) == 2  # two distinct molecules
    again = run(ext.MoleculeDescription, model, table).to_pandas()
    pd.testing.assert_frame_equal(first, again)
    off = run(ext.ModelSelector, settings={**settings, "answer_cache": False})
    assert off.spec.answer_cache is False
