"""Worker processes: the same answers as in-process, cancellation, failures reported clearly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llamo_plugin.checkpoint.format import load_model, save_model
from llamo_plugin.config import DecodeConfig
from llamo_plugin.errors import CancelledError
from llamo_plugin.pipeline import Pipeline
from llamo_plugin.runtime import load_pipeline
from llamo_plugin.workers import (
    WorkerError,
    WorkerPool,
    WorkerSpec,
    auto_workers,
    cpu_cores,
    start_workers,
)

DECODE = DecodeConfig(max_new_tokens=6)
Q = "Describe this molecule."
TABLE = [
    "CCO",
    "OCC",
    None,
    "not a smiles",
    "c1ccccc1O",
    "[Na+].[Cl-]",
    "C",
    "CC(=O)Oc1ccccc1C(=O)O",
    "N[C@@H](C)C(=O)O",
    "N[C@H](C)C(=O)O",
    "CCO",
]


@pytest.fixture(scope="module")
def model_dir(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random model saved as a model directory (no ONNX graph: PyTorch encoder)."""
    path = tmp_path_factory.mktemp("workers") / "model"
    save_model(tiny_model, path)
    return path


@pytest.fixture(scope="module")
def saved_model(model_dir: Path) -> Any:
    return load_model(model_dir).eval()


@pytest.fixture(scope="module")
def pool(model_dir: Path) -> Iterator[WorkerPool]:
    with WorkerPool(WorkerSpec(str(model_dir), graph="torch", threads=1), 2) as p:
        yield p


def test_same_rows_as_in_process(saved_model: Any, pool: WorkerPool) -> None:
    assert pool.checksum == saved_model.checksum
    want = Pipeline(saved_model, chunk_size=3).run(TABLE, Q, decode=DECODE)
    pipe = Pipeline(saved_model, chunk_size=3, workers=pool)
    seen: list[tuple[int, int]] = []
    got = pipe.run(TABLE, Q, decode=DECODE, progress=lambda d, t: seen.append((d, t)))
    assert [(r.status, r.text, r.canonical_smiles) for r in got] == [
        (r.status, r.text, r.canonical_smiles) for r in want
    ]
    assert sum(r.status == "ok" for r in got) == 9 and got[0].text == got[10].text
    assert pipe.stats.unique == 7 and seen[-1] == (7, 7) and len(seen) == 4  # 0, 3, 6, 7


def test_shards_are_put_back_in_order(saved_model: Any, pool: WorkerPool) -> None:
    from llamo_plugin.chem.smiles import parse_smiles

    smiles = ["C", "CC", "CCC", "CCCC", "CCCCC"]  # 5 items over 2 workers: 3 + 2
    items = [(parse_smiles(s), Q) for s in smiles]
    local = Pipeline(saved_model).answer_items(items, DECODE)
    assert pool.answer(items, DECODE) == local
    assert pool.answer(items[:1], DECODE) == local[:1]  # one worker idle
    assert pool.answer([], DECODE) == []


def test_cancellation_reaches_the_workers(saved_model: Any, pool: WorkerPool) -> None:
    pipe = Pipeline(saved_model, workers=pool)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 1  # the pipeline's first check passes; the pool's does not

    from llamo_plugin.bench import bench_smiles

    # 40 molecules: the workers are still preparing when the caller sets the event (no race)
    with pytest.raises(CancelledError):
        pipe.run(bench_smiles(40), Q, decode=DecodeConfig(max_new_tokens=200), should_stop=stop)
    rows = pipe.run(["CCO"], Q, decode=DECODE)  # the pool still works afterwards
    assert rows[0].status == "ok" and rows[0].text is not None


def test_pipeline_refuses_another_models_workers(pool: WorkerPool, tiny_model: Any) -> None:
    from llamo_plugin.model.factory import tiny_random_model

    other = tiny_random_model(seed=1)
    with pytest.raises(ValueError, match="not this pipeline's model"):
        Pipeline(other, workers=pool)


def test_a_dead_worker_is_reported_and_closes_the_pool(model_dir: Path) -> None:
    from llamo_plugin.chem.smiles import parse_smiles

    p = WorkerPool(WorkerSpec(str(model_dir), graph="torch"), 1)
    p._procs[0].kill()
    p._procs[0].join()
    with pytest.raises(WorkerError, match="worker 0 exited"):
        p.answer([(parse_smiles("CCO"), Q)], DECODE)
    with pytest.raises(WorkerError, match="closed"):
        p.answer([(parse_smiles("CCO"), Q)], DECODE)
    p.close()  # idempotent


def test_a_worker_that_cannot_load_says_why(tmp_path: Path) -> None:
    with pytest.raises(WorkerError, match="could not load") as info:
        WorkerPool(WorkerSpec(str(tmp_path / "missing")), 1)
    assert "missing" in str(info.value)


def test_spec_and_worker_count_validation(tiny_model: Any) -> None:
    with pytest.raises(ValueError, match="graph"):
        WorkerSpec("x", graph="tensorflow")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threads"):
        WorkerSpec("x", threads=0)
    with pytest.raises(ValueError, match="workers"):
        WorkerPool(WorkerSpec("x"), 0)
    with pytest.raises(ValueError, match="workers"):
        load_pipeline(workers=0)
    assert auto_workers(tiny_model, "cuda") == 1
    assert start_workers(tiny_model, None, 2) is None  # no model directory to load from
    assert start_workers(tiny_model, "x", 2, backend="vllm") is None
    with pytest.raises(ValueError, match="workers"):
        start_workers(tiny_model, "x", True)
    assert auto_workers(tiny_model, "cpu") == min(cpu_cores(), 8)


def test_an_interrupted_request_closes_the_pool(model_dir: Path) -> None:
    from llamo_plugin.bench import bench_smiles
    from llamo_plugin.chem.smiles import parse_smiles

    p = WorkerPool(WorkerSpec(str(model_dir), graph="torch"), 1)
    items = [(parse_smiles(s), Q) for s in bench_smiles(40)]

    def interrupt() -> bool:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # its reply would otherwise be read as the next one's
        p.answer(items, DecodeConfig(max_new_tokens=200), should_stop=interrupt)
    assert not p._procs[0].is_alive()
    with pytest.raises(WorkerError, match="closed"):
        p.answer(items[:1], DECODE)
