"""Micro-batching: requests that arrive together are answered by one ``Pipeline.run``.

One model, one thread that runs it (the *batcher thread*), one queue in front of it. A
request's rows become a :class:`Job`; the batcher thread takes the oldest job, lets others
with the same :class:`BatchKey` (task name, decoding settings, SMILES limits: one run has one
of each) join it for up to ``max_wait_s`` from the moment the model is free (so the clients
the last run answered can send their next requests in time) and up to ``max_rows`` rows,
runs them as one :meth:`~llamo_plugin.pipeline.Pipeline.run` (which deduplicates, consults the
answer cache and decodes in length-sorted batches), and hands each job its slice of the rows,
in order. While the model is busy, jobs simply accumulate and the next batch takes them all,
so the batch size follows the load without any tuning.

The pipeline is opened *in* the batcher thread (``open_pipeline``), because an
:class:`~llamo_plugin.cache.AnswerCache` connection belongs to the thread that opened it, and
it is used only there: the model, the cache and the decode loop are never touched by two
threads at once.

Nothing is dropped silently: a job ends with its rows, or with an exception its requester
turns into an HTTP error: :class:`ShuttingDownError` (503), :class:`QueueFullError` (503), the
pipeline's own error (500), or the requester's own withdrawal (:meth:`Job.abandon`: a
timeout or a client that went away). A batch all of whose requesters have withdrawn is
stopped between decoding steps (its finished chunks stay cached).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any

from llamo_plugin.chem.smiles import SmilesLimits
from llamo_plugin.config import DecodeConfig
from llamo_plugin.errors import CancelledError, LlamoError

logger = logging.getLogger(__name__)


class ShuttingDownError(LlamoError):
    """The server is stopping: the job was not (or no longer) run."""


class QueueFullError(LlamoError):
    """More rows are waiting for the model than the server accepts (back-pressure)."""


class WithdrawnError(LlamoError):
    """The requester stopped waiting (timeout, client gone) before the rows were ready."""


@dataclass(frozen=True)
class BatchKey:
    """What jobs of one batch must share: one ``Pipeline.run`` has one task name (part of the
    cache key), one decoding config and one set of SMILES limits."""

    task: str
    decode: DecodeConfig
    limits: SmilesLimits


class Job:
    """One request's rows for one pipeline run; :attr:`future` gets the
    :class:`~llamo_plugin.pipeline.RowResult` list (same order) or an exception."""

    def __init__(self, key: BatchKey, smiles: Sequence[Any], instructions: Sequence[str]) -> None:
        if len(smiles) != len(instructions):
            raise ValueError(f"{len(instructions)} instructions for {len(smiles)} SMILES")
        self.key = key
        self.smiles = list(smiles)
        self.instructions = list(instructions)
        self.future: Future[list[Any]] = Future()
        self.enqueued = time.monotonic()
        #: the requester no longer waits for the result
        self.abandoned = False

    @property
    def rows(self) -> int:
        return len(self.smiles)

    def abandon(self, reason: BaseException | None = None) -> None:
        """Withdraw: a queued job is removed before it runs; a running one no longer keeps its
        batch going (the batch stops when every job in it is abandoned); whoever waits on
        :attr:`future` gets ``reason`` (default :class:`WithdrawnError`)."""
        self.abandoned = True
        if not self.future.cancel():
            _settle(self.future, exception=reason or WithdrawnError("withdrawn by the requester"))


def _settle(
    future: Future[Any], *, result: Any = None, exception: BaseException | None = None
) -> None:
    """Set a future's outcome unless it already has one (an abandoned job's waiter may have
    been answered already)."""
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass


class MicroBatcher:
    """The queue and the thread that owns the pipeline. ``start()`` opens the pipeline (in the
    batcher thread) and raises its load error, if any; ``close()`` stops the thread and, if
    ``close_pipeline``, closes the pipeline there."""

    def __init__(
        self,
        open_pipeline: Callable[[], Any],
        *,
        max_rows: int = 256,
        max_wait_s: float = 0.005,
        max_queued_rows: int = 16_384,
        close_pipeline: bool = True,
        on_batch: Callable[[int, int, float], None] | None = None,
    ) -> None:
        """
        Args:
            open_pipeline: builds the :class:`~llamo_plugin.pipeline.Pipeline` (called once, in
                the batcher thread), e.g. ``lambda: runtime.load_pipeline(...)``.
            max_rows: most rows per pipeline run (a larger single job runs alone).
            max_wait_s: how long a batch waits for more jobs once the model is free.
            max_queued_rows: queued rows beyond which :meth:`submit` raises :class:`QueueFullError`.
            close_pipeline: close the pipeline when the batcher closes (False when the caller
                shares one pipeline between batchers, e.g. in tests and ``llamo bench``).
            on_batch: called after each run with (rows, jobs, seconds), e.g. for metrics.
        """
        if max_rows < 1 or max_wait_s < 0 or max_queued_rows < 1:
            raise ValueError("max_rows and max_queued_rows must be >= 1, max_wait_s >= 0")
        self._open = open_pipeline
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self.max_queued_rows = max_queued_rows
        self._close_pipeline = close_pipeline
        self.on_batch = on_batch
        self._cond = threading.Condition()
        self._queue: list[Job] = []
        self._closed = False
        self._abort_at: float | None = None  # monotonic time from which work is refused
        self._pipeline: Any = None
        self._load_error: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="llamo-batcher", daemon=True)
        #: rows and jobs being decoded right now
        self.running_rows = 0
        self.running_jobs = 0
        self.batches = 0
        self._free_since = 0.0  # monotonic time the last run ended

    # ----------------------------------------------------------------- life cycle
    def start(self) -> Any:
        """Start the batcher thread, wait for the pipeline to open and return it; its load
        error (a bad model directory, ...) is raised here."""
        self._thread.start()
        self._ready.wait()
        if self._load_error is not None:
            self._thread.join()
            raise self._load_error
        return self._pipeline

    @property
    def pipeline(self) -> Any:
        """The pipeline (read its ``model`` only: runs happen in the batcher thread)."""
        if self._pipeline is None:
            raise RuntimeError("the batcher is not started")
        return self._pipeline

    @property
    def model(self) -> Any:
        return self.pipeline.model

    def begin_shutdown(self, grace_s: float) -> None:
        """Work queued or running may finish for ``grace_s`` more seconds; after that, queued
        jobs and those of the running batch end with :class:`ShuttingDownError` (the running
        batch stops at its next decoding step) and new jobs are refused."""
        with self._cond:
            abort_at = time.monotonic() + max(0.0, grace_s)
            if self._abort_at is None or abort_at < self._abort_at:
                self._abort_at = abort_at
            self._cond.notify_all()
        logger.info(
            "shutting down: %d queued job(s) (%d rows), %d running; %.0f s to finish",
            len(self._queue),
            self.queued_rows,
            self.running_jobs,
            grace_s,
        )

    def close(self, timeout: float | None = None) -> None:
        """Stop the batcher thread once the queue is empty (or refused, after
        :meth:`begin_shutdown`'s grace), and close the pipeline if it is ours."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def stopping(self) -> bool:
        """Whether :meth:`begin_shutdown` or :meth:`close` was called."""
        return self._closed or self._abort_at is not None

    # ---------------------------------------------------------------- submitting
    @property
    def queue_depth(self) -> int:
        """Jobs waiting for the model (not counting the running batch)."""
        with self._cond:
            return len(self._queue)

    @property
    def queued_rows(self) -> int:
        with self._cond:
            return sum(j.rows for j in self._queue)

    def submit(self, key: BatchKey, smiles: Sequence[Any], instructions: Sequence[str]) -> Job:
        """Queue a job; its :attr:`Job.future` gets the rows. Raises :class:`ShuttingDownError`
        or :class:`QueueFullError`."""
        job = Job(key, smiles, instructions)
        if not job.rows:
            job.future.set_result([])
            return job
        with self._cond:
            if self._closed or self._past_abort():
                raise ShuttingDownError("the server is shutting down")
            queued = sum(j.rows for j in self._queue)
            if self._queue and queued + job.rows > self.max_queued_rows:
                raise QueueFullError(
                    f"{queued:,} rows are waiting for the model (limit {self.max_queued_rows:,})"
                )
            self._queue.append(job)
            self._cond.notify_all()
        return job

    # ------------------------------------------------------------ batcher thread
    def _past_abort(self) -> bool:
        return self._abort_at is not None and time.monotonic() >= self._abort_at

    def _main(self) -> None:
        try:
            self._pipeline = self._open()
        except BaseException as exc:
            self._load_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    break
                if batch:
                    self._run(batch)
        finally:
            with self._cond:
                self._refuse_queued()
            if self._close_pipeline:
                self._pipeline.close()

    def _refuse_queued(self) -> None:
        """End every queued job with :class:`ShuttingDownError` (lock held)."""
        for job in self._queue:
            _settle(job.future, exception=ShuttingDownError("the server is shutting down"))
        self._queue.clear()

    def _next_batch(self) -> list[Job] | None:
        """The next batch (possibly empty when its jobs were withdrawn meanwhile); None when
        closed and nothing is left to run."""
        with self._cond:
            while True:
                if self._past_abort():
                    self._refuse_queued()
                self._queue = [j for j in self._queue if not j.future.done()]
                if self._queue:
                    break
                if self._closed:
                    return None
                wait = None  # until a job, close() or begin_shutdown() notifies
                if self._abort_at is not None and not self._past_abort():
                    wait = max(0.01, self._abort_at - time.monotonic())
                self._cond.wait(wait)
            first = self._queue[0]
            # The window opens when a job and the model are both there: after a run, the
            # clients it answered send their next requests within milliseconds, and they
            # join this batch instead of waiting for the next one.
            until = max(first.enqueued, self._free_since) + self.max_wait_s
            while not self.stopping:
                rows = sum(j.rows for j in self._queue if j.key == first.key)
                left = until - time.monotonic()
                if rows >= self.max_rows or left <= 0:
                    break
                self._cond.wait(left)
            batch: list[Job] = []
            rest: list[Job] = []
            rows = 0
            full = False
            for job in self._queue:
                fits = not batch or rows + job.rows <= self.max_rows
                if job.key == first.key and not full and fits:
                    batch.append(job)
                    rows += job.rows
                else:
                    full = full or job.key == first.key
                    rest.append(job)
            self._queue = rest
        # A job withdrawn since it was queued is dropped here (its future is cancelled).
        return [j for j in batch if j.future.set_running_or_notify_cancel()]

    def _run(self, batch: list[Job]) -> None:
        key = batch[0].key
        smiles = [s for j in batch for s in j.smiles]
        instructions = [i for j in batch for i in j.instructions]

        def should_stop() -> bool:
            return self._past_abort() or all(j.abandoned for j in batch)

        self.running_rows, self.running_jobs = len(smiles), len(batch)
        t0 = time.perf_counter()
        try:
            rows = self._pipeline.run(
                smiles,
                instructions,
                task=key.task,
                decode=key.decode,
                limits=key.limits,
                should_stop=should_stop,
            )
        except CancelledError:
            if self._past_abort():
                reason: BaseException = ShuttingDownError("the server shut down before the answer")
            else:
                reason = WithdrawnError("every requester of the batch withdrew")
            for job in batch:
                _settle(job.future, exception=reason)
            return
        except Exception as exc:
            logger.exception("a batch of %d rows (%d requests) failed", len(smiles), len(batch))
            for job in batch:
                _settle(job.future, exception=exc)
            return
        finally:
            self.running_rows = self.running_jobs = 0
            self._free_since = time.monotonic()
        seconds = time.perf_counter() - t0
        self.batches += 1
        start = 0
        for job in batch:
            _settle(job.future, result=rows[start : start + job.rows])
            start += job.rows
        logger.debug("batch: %d rows of %d requests in %.2f s", len(smiles), len(batch), seconds)
        if self.on_batch is not None:
            self.on_batch(len(smiles), len(batch), seconds)
