"""The micro-batcher with the real embedded model: jobs that wait together run as one
``Pipeline.run`` (per task and decoding settings, up to the row cap), each gets exactly its
rows in order, withdrawn jobs never run, and shutdown refuses work explicitly."""

from __future__ import annotations

import time
from concurrent.futures import CancelledError
from typing import Any

import pytest

from llamo_plugin.chem.smiles import DEFAULT_LIMITS
from llamo_plugin.config import DecodeConfig
from llamo_plugin.serve.batcher import BatchKey, MicroBatcher, ShuttingDownError, WithdrawnError
from tests.unit.serve.conftest import BAD, MOLECULES

HOMO = "What is the HOMO energy of this molecule in Hartree?"
SHORT = BatchKey("qa", DecodeConfig(max_new_tokens=6), DEFAULT_LIMITS)
OTHER = BatchKey("qa", DecodeConfig(max_new_tokens=5), DEFAULT_LIMITS)


def batcher(pipeline: Any, runs: list[tuple[int, int]], **kw: Any) -> MicroBatcher:
    b = MicroBatcher(lambda: pipeline, close_pipeline=False, **kw)
    b.on_batch = lambda rows, jobs, seconds: runs.append((rows, jobs))
    return b


def test_waiting_jobs_share_runs_and_get_their_own_rows(pipeline: Any) -> None:
    rows = MOLECULES[:6] + BAD
    expected = pipeline.run(rows, HOMO, task="qa", decode=SHORT.decode)
    expected_other = pipeline.run(MOLECULES[:2], HOMO, task="qa", decode=OTHER.decode)
    runs: list[tuple[int, int]] = []
    b = batcher(pipeline, runs, max_rows=8)
    # queued before the thread starts: they are all waiting when the first batch forms
    chunks = [rows[0:3], rows[3:6], rows[6:8], rows[8:10]]
    jobs = [b.submit(SHORT, c, [HOMO] * len(c)) for c in chunks]
    other = b.submit(OTHER, MOLECULES[:2], [HOMO] * 2)
    b.start()
    try:
        got = [j.future.result(timeout=120) for j in jobs]
        got_other = other.future.result(timeout=120)
    finally:
        b.close()
    # one run per decoding setting, the row cap respected (3+3+2 = 8, then 2), FIFO order
    assert runs == [(8, 3), (2, 1), (2, 1)]
    flat = [r for rs in got for r in rs]
    assert [r.smiles for r in flat] == rows  # nothing lost, duplicated or reordered
    assert [(r.status, r.text, r.error) for r in flat] == [
        (r.status, r.text, r.error) for r in expected
    ]
    assert [r.text for r in got_other] == [r.text for r in expected_other]
    assert [r.status for r in flat[6:9]] == ["invalid_smiles"] * 3  # statuses, not errors


def test_withdrawn_jobs_never_run(pipeline: Any) -> None:
    runs: list[tuple[int, int]] = []
    b = batcher(pipeline, runs)
    keep = b.submit(SHORT, MOLECULES[:2], [HOMO] * 2)
    drop = b.submit(SHORT, MOLECULES[2:5], [HOMO] * 3)
    drop.abandon()
    b.start()
    try:
        assert len(keep.future.result(timeout=120)) == 2
    finally:
        b.close()
    with pytest.raises(CancelledError):
        drop.future.result(timeout=0)
    assert runs == [(2, 1)]


def test_a_batch_nobody_waits_for_stops(pipeline: Any) -> None:
    runs: list[tuple[int, int]] = []
    b = batcher(pipeline, runs)
    long = BatchKey("description", pipeline.model.config.decode, DEFAULT_LIMITS)
    job = b.submit(long, MOLECULES, ["Describe this molecule."] * len(MOLECULES))
    b.start()
    try:
        deadline = time.monotonic() + 60
        while b.running_rows == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert b.running_rows == len(MOLECULES)  # decoding 8 descriptions takes seconds
        job.abandon()
        with pytest.raises((WithdrawnError, CancelledError)):
            job.future.result(timeout=0)
        after = b.submit(SHORT, MOLECULES[:1], [HOMO])  # the batcher goes on serving
        assert after.future.result(timeout=120)[0].status == "ok"
    finally:
        b.close()
    assert runs == [(1, 1)]  # the abandoned batch was stopped, never completed


def test_shutdown_refuses_queued_and_new_work(pipeline: Any) -> None:
    runs: list[tuple[int, int]] = []
    b = batcher(pipeline, runs)
    queued = [b.submit(SHORT, MOLECULES[i : i + 1], [HOMO]) for i in range(3)]
    b.begin_shutdown(0)  # no grace: what waits is refused
    b.start()
    try:
        for job in queued:
            with pytest.raises(ShuttingDownError):
                job.future.result(timeout=60)
        with pytest.raises(ShuttingDownError):
            b.submit(SHORT, MOLECULES[:1], [HOMO])
    finally:
        b.close()
    assert runs == []


def test_shutdown_grace_lets_queued_work_finish(pipeline: Any) -> None:
    runs: list[tuple[int, int]] = []
    b = batcher(pipeline, runs, max_rows=1)
    queued = [b.submit(SHORT, MOLECULES[i : i + 1], [HOMO]) for i in range(3)]
    b.begin_shutdown(600)
    b.start()
    try:
        assert [j.future.result(timeout=120)[0].status for j in queued] == ["ok"] * 3
    finally:
        b.close()
    assert runs == [(1, 1)] * 3


def test_a_model_that_cannot_load_fails_start(tmp_path: Any) -> None:
    from llamo_plugin.errors import CheckpointError
    from llamo_plugin.runtime import load_pipeline

    b = MicroBatcher(lambda: load_pipeline(tmp_path / "no-model"))
    with pytest.raises(CheckpointError) as info:
        b.start()
    assert "no-model" in str(info.value)
