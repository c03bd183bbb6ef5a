"""A request's deadline and cancellation, and the pipeline view the task code runs on.

:class:`~llamo_plugin.annotate.Annotator` (the task logic of ``llamo annotate`` and the
KNIME nodes) calls ``pipeline.run(...)`` once per task. In the server its pipeline is a
:class:`BatchedPipeline`: each ``run`` becomes a :class:`~llamo_plugin.serve.batcher.Job`
in the micro-batching queue, and the calling thread waits for its rows under the current
request's :class:`RequestContext` (its deadline, and whether its client is still there).
The context travels in a :mod:`contextvars` variable, so one Annotator (and its loaded
reference table) serves every request with the same options.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from llamo_plugin.chem.smiles import DEFAULT_LIMITS, SmilesLimits
from llamo_plugin.config import DecodeConfig
from llamo_plugin.errors import LlamoError
from llamo_plugin.pipeline import RunStats
from llamo_plugin.serve.batcher import BatchKey, Job, MicroBatcher, WithdrawnError


class RequestTimeoutError(LlamoError):
    """The request's deadline passed before its answers were ready."""


class ClientGoneError(LlamoError):
    """The client closed the connection; nobody waits for the answers."""


class RequestContext:
    """One request: its deadline, its cancellation, the jobs it has queued, and what it used
    (decoding settings per task, row counts) for the response."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.cancelled = False
        self._lock = threading.Lock()
        self._jobs: list[Job] = []
        #: task name -> the decoding settings its rows were answered with
        self.decodes: dict[str, dict[str, Any]] = {}
        #: counters over every run of this request (rows per run, not per table row)
        self.stats = RunStats()
        #: the last run's counters (what ``Annotator`` reads after each run)
        self.last_stats = RunStats()

    def cancel(self) -> None:
        """The client went away: withdraw this request's queued and running jobs (callable
        from any thread)."""
        with self._lock:
            self.cancelled = True
            jobs = list(self._jobs)
        for job in jobs:
            job.abandon(ClientGoneError("the client closed the connection"))

    def wait(self, job: Job) -> list[Any]:
        """The job's rows; :class:`RequestTimeoutError` at the deadline,
        :class:`ClientGoneError` after :meth:`cancel` (the job is withdrawn either way); the
        batcher's own errors as they are."""
        with self._lock:
            if self.cancelled:
                job.abandon()
                raise ClientGoneError("the client closed the connection")
            self._jobs.append(job)
        try:
            return job.future.result(timeout=max(0.0, self.deadline - time.monotonic()))
        except FutureTimeout:
            job.abandon()
            raise RequestTimeoutError(
                f"no answer within this server's request timeout ({self.timeout_s:g} s)"
            ) from None
        except (FutureCancelled, WithdrawnError, ClientGoneError):
            if self.cancelled:
                raise ClientGoneError("the client closed the connection") from None
            raise
        finally:
            with self._lock:
                self._jobs.remove(job)

    def record(
        self, task: str, decode: DecodeConfig, rows: Sequence[Any], instructions: Any
    ) -> RunStats:
        """Count one run's rows (as :class:`~llamo_plugin.pipeline.RunStats`: distinct ok
        requests, how many came from the answer cache) and remember its decoding settings."""
        keys: dict[tuple[Any, Any], bool] = {}
        for i, r in enumerate(rows):
            if r.status == "ok":
                instr = instructions if isinstance(instructions, str) else instructions[i]
                key = (r.canonical_smiles, instr)
                keys[key] = keys.get(key, True) and r.cached
        hits = sum(keys.values())
        stats = RunStats(
            rows=len(rows),
            invalid=sum(r.status != "ok" for r in rows),
            unique=len(keys),
            cache_hits=hits,
            generated=len(keys) - hits,
        )
        self.decodes[task] = decode.to_dict()
        for name in ("rows", "invalid", "unique", "cache_hits", "generated"):
            setattr(self.stats, name, getattr(self.stats, name) + getattr(stats, name))
        self.last_stats = stats
        return stats


_CURRENT: contextvars.ContextVar[RequestContext] = contextvars.ContextVar("llamo_serve_request")


@contextlib.contextmanager
def request_scope(ctx: RequestContext) -> Iterator[RequestContext]:
    """Make ``ctx`` the current request of this thread (or task) for :class:`BatchedPipeline`."""
    token = _CURRENT.set(ctx)
    try:
        yield ctx
    finally:
        _CURRENT.reset(token)


def current_request() -> RequestContext:
    try:
        return _CURRENT.get()
    except LookupError:
        raise RuntimeError("BatchedPipeline.run outside a request_scope") from None


class BatchedPipeline:
    """What the task code sees as its pipeline: the model (read only), ``run`` (through the
    micro-batching queue, waiting under the current request's context) and ``stats`` (the
    current request's last run)."""

    def __init__(self, batcher: MicroBatcher) -> None:
        self.batcher = batcher

    @property
    def model(self) -> Any:
        return self.batcher.model

    @property
    def model_checksum(self) -> str:
        return str(self.batcher.pipeline.model_checksum)

    @property
    def stats(self) -> RunStats:
        return current_request().last_stats

    def run(
        self,
        smiles: Sequence[Any],
        instruction: str | Sequence[str],
        *,
        task: str = "qa",
        decode: DecodeConfig | None = None,
        progress: Any = None,
        should_stop: Any = None,
        limits: SmilesLimits = DEFAULT_LIMITS,
    ) -> list[Any]:
        """:meth:`Pipeline.run <llamo_plugin.pipeline.Pipeline.run>`'s contract, answered by
        the batcher. ``should_stop`` is not polled (a request is stopped by its deadline or
        its client leaving); ``progress`` is told once, at the end."""
        ctx = current_request()
        decode = decode or self.model.config.decode
        n = len(smiles)
        if isinstance(instruction, str):
            instructions: list[str] = [instruction] * n
        else:
            instructions = list(instruction)
            if len(instructions) != n:
                raise ValueError(f"{len(instructions)} instructions for {n} SMILES")
        job = self.batcher.submit(BatchKey(task, decode, limits), smiles, instructions)
        rows = ctx.wait(job)
        ctx.record(task, decode, rows, instructions)
        if progress is not None:
            progress(n, n)
        return rows
