"""The inference pipeline: per-row statuses, dedupe, cache, progress, cancellation, parity."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from llamo_plugin.backends.graph_onnx import OnnxGraphEncoder
from llamo_plugin.backends.hf import HFBackend
from llamo_plugin.cache import AnswerCache
from llamo_plugin.config import DecodeConfig
from llamo_plugin.errors import CancelledError
from llamo_plugin.pipeline import Pipeline

DECODE = DecodeConfig(max_new_tokens=6)
Q = "Describe this molecule."
TABLE = [
    "CCO",
    "OCC",  # same molecule as row 0
    None,
    "",
    "not a smiles",
    float("nan"),
    "c1ccccc1O",
    "[Na+].[Cl-]",
    "CCO",
    "C",
    "N[C@@H](C)C(=O)O",
    "N[C@H](C)C(=O)O",  # the enantiomer: a different molecule
]


def _pipeline(model: Any, **kwargs: Any) -> Pipeline:
    return Pipeline(model, backend=HFBackend(model, max_batch_size=3), chunk_size=2, **kwargs)


def test_rows_statuses_and_dedupe(tiny_model: Any) -> None:
    pipe = _pipeline(tiny_model)
    rows = pipe.run(TABLE, Q, decode=DECODE)
    assert len(rows) == len(TABLE)
    status = [r.status for r in rows]
    assert status == ["ok", "ok"] + ["invalid_smiles"] * 4 + ["ok"] * 6
    for r in rows[2:6]:
        assert r.text is None and r.error
    assert rows[0].text == rows[1].text == rows[8].text
    assert rows[0].canonical_smiles == rows[1].canonical_smiles == "CCO"
    assert rows[10].canonical_smiles != rows[11].canonical_smiles
    assert pipe.stats.rows == 12 and pipe.stats.invalid == 4
    assert pipe.stats.unique == 6 and pipe.stats.generated == 6
    assert rows[2].smiles is None and math.isnan(rows[5].smiles)  # inputs kept as given


def test_same_answers_as_the_model(tiny_model: Any) -> None:
    smiles = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "C"]
    want = [tiny_model.generate([tiny_model.prepare(s, Q)], DECODE)[0] for s in smiles]
    got = _pipeline(tiny_model).run(smiles, Q, decode=DECODE)
    assert [r.text for r in got] == [g.text for g in want]


def test_onnx_encoder_same_answers(tiny_model: Any, tiny_onnx: Path) -> None:
    smiles = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "C", "[Na+].[Cl-]"]
    torch_rows = _pipeline(tiny_model).run(smiles, Q, decode=DECODE)
    onnx = OnnxGraphEncoder(tiny_onnx, device="cpu")
    onnx_rows = _pipeline(tiny_model, graph_encoder=onnx).run(smiles, Q, decode=DECODE)
    assert [r.text for r in onnx_rows] == [r.text for r in torch_rows]


def test_per_row_instructions(tiny_model: Any) -> None:
    pipe = _pipeline(tiny_model)
    instr = ["Describe this molecule.", "What is the IUPAC name of this molecule?", "", None]
    rows = pipe.run(["CCO", "CCO", "CCO", "CCO"], instr, decode=DECODE)  # type: ignore[arg-type]
    assert [r.status for r in rows] == ["ok", "ok"] + ["missing_instruction"] * 2
    assert rows[2].error == "missing_instruction: no question"
    assert pipe.stats.unique == 2
    with pytest.raises(ValueError, match="instructions"):
        pipe.run(["CCO"], ["a", "b"], decode=DECODE)


def test_cache_second_run_and_model_identity(tiny_model: Any, tmp_path: Path) -> None:
    with AnswerCache(tmp_path / "c.sqlite") as cache:
        pipe = _pipeline(tiny_model, cache=cache)
        first = pipe.run(TABLE, Q, decode=DECODE)
        assert pipe.stats.cache_hits == 0 and not any(r.cached for r in first)
        second = pipe.run(TABLE, Q, decode=DECODE)
        assert pipe.stats.cache_hits == 6 and pipe.stats.generated == 0
        assert [r.text for r in second] == [r.text for r in first]
        assert all(r.cached for r in second if r.status == "ok")
        # Other decoding settings are other answers.
        pipe.run(TABLE, Q, decode=DecodeConfig(max_new_tokens=5))
        assert pipe.stats.cache_hits == 0


def test_progress_reports_every_chunk(tiny_model: Any) -> None:
    seen: list[tuple[int, int]] = []
    _pipeline(tiny_model).run(TABLE, Q, decode=DECODE, progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, 6) and seen[-1] == (6, 6)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_cancel_keeps_finished_chunks_cached(tiny_model: Any, tmp_path: Path) -> None:
    smiles = ["C" * n for n in range(1, 9)]  # 8 distinct molecules = 4 chunks
    done = {"chunks": 0}

    def progress(d: int, t: int) -> None:
        done["chunks"] = d // 2

    with AnswerCache(tmp_path / "c.sqlite") as cache:
        pipe = _pipeline(tiny_model, cache=cache)
        with pytest.raises(CancelledError):
            pipe.run(
                smiles, Q, decode=DECODE, progress=progress, should_stop=lambda: done["chunks"] >= 2
            )
        assert len(cache) == 4  # two finished chunks of two
        pipe.run(smiles, Q, decode=DECODE)
        assert pipe.stats.cache_hits == 4 and pipe.stats.generated == 4
