"""Local worker processes: the pipeline's prepare + decode stages on every core of one machine.

A small LM decodes a step as many small matmuls and elementwise ops; with torch's intra-op
threads, each op is split across cores and re-joined, and the Python between ops runs on one
core. Several processes of fewer threads each, every one decoding its share of the batch,
use the cores better (on this project's 2-core VM, two one-thread processes decoded the 256
benchmark molecules in 6.3-7.0 s where one two-thread process took 8.0-9.2 s; measured in
docs/benchmarks.md). This is data parallelism on one machine, with the standard library's
``multiprocessing``; across machines the same stages are meant to run on Ray.

Each worker loads the model from its directory (with the same graph encoder choice as the
caller), then answers requests: a list of ``(ParsedMolecule, instruction)`` items and a
:class:`~llamo_plugin.config.DecodeConfig` in, one
:class:`~llamo_plugin.records.Generation` per item out
(:meth:`llamo_plugin.pipeline.Pipeline.answer_items`). :class:`WorkerPool` splits each chunk
of the pipeline into interleaved shards (items arrive sorted by length, so the shards get
similar work), one per worker, and puts the answers back in order. Dedupe, the answer cache,
progress and cancellation stay in the calling process; cancellation reaches the workers
through a shared event polled inside their generation loop.

Workers are started with the ``spawn`` method (safe with threads and on every OS). As for any
``multiprocessing`` code, a script that builds a pool at its top level needs the usual
``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from llamo_plugin.backends.base import ShouldStop
from llamo_plugin.config import DecodeConfig
from llamo_plugin.errors import CancelledError
from llamo_plugin.records import Generation

logger = logging.getLogger(__name__)

GraphChoice = Literal["auto", "onnx", "torch"]

#: Largest LM (bytes of weights) for which ``workers="auto"`` starts several processes on CPU:
#: each worker holds its own copy of the model.
AUTO_WORKERS_MAX_MODEL_BYTES = 1 << 30
#: Most worker processes ``workers="auto"`` starts.
AUTO_WORKERS_MAX = 8


class WorkerError(RuntimeError):
    """A worker process failed to start, raised an error, or died."""


@dataclass(frozen=True)
class WorkerSpec:
    """How every worker builds its pipeline.

    Attributes:
        model_dir: the model directory the workers load (our format, with its manifest).
        graph: graph encoder, as for :func:`~llamo_plugin.runtime.load_pipeline`.
        threads: torch intra-op threads and onnxruntime threads per worker.
    """

    model_dir: str
    graph: GraphChoice = "auto"
    threads: int = 1
    #: ``module:function`` each worker runs after start-up (see :func:`_bootstrap`)
    entry: str = "llamo_plugin.runtime:serve_worker"

    def __post_init__(self) -> None:
        if self.graph not in ("auto", "onnx", "torch"):
            raise ValueError(f"graph must be auto, onnx or torch, not {self.graph!r}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, not {self.threads}")


def cpu_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def set_process_threads(threads: int | None = None) -> int:
    """Give this process ``threads`` torch threads (default: its cores by CPU affinity, not
    every core of the machine) and return the number; worker processes split them.

    torch's OpenMP threads busy-wait between parallel regions; with more threads than free
    cores (two jobs side by side each taking every core) they wait on each other, which made
    two concurrent runs ~10x slower each instead of ~2x (docs/benchmarks.md).
    """
    import torch

    n = max(1, threads if threads is not None else cpu_cores())
    torch.set_num_threads(n)
    return n


def auto_workers(model: Any, device: str = "cpu") -> int:
    """Worker processes for ``workers="auto"``: one per core (at most
    :data:`AUTO_WORKERS_MAX`) for a small LM on CPU; 1 (in-process) on a GPU or for an LM of
    more than :data:`AUTO_WORKERS_MAX_MODEL_BYTES` (every worker holds a copy)."""
    if device != "cpu":
        return 1
    size = sum(p.numel() * p.element_size() for p in model.lm.parameters())
    if size > AUTO_WORKERS_MAX_MODEL_BYTES:
        return 1
    return min(cpu_cores(), AUTO_WORKERS_MAX)


def start_workers(
    model: Any,
    model_dir: str | Path | None,
    workers: int | str,
    *,
    graph: GraphChoice = "auto",
    backend: str = "hf",
    threads: int | None = None,
) -> WorkerPool | None:
    """The worker processes a pipeline of ``model`` should use, started and ready; None where
    it runs in the calling process: ``workers`` is 1 (or ``"auto"`` gives 1,
    :func:`auto_workers`), or the set-up cannot use workers (a backend other than ``hf``, a
    model without a directory, a GPU). Each worker gets ``threads // workers`` threads
    (``threads``: this job's share, default the cores by CPU affinity)."""
    if workers != "auto" and (isinstance(workers, bool) or not isinstance(workers, int)
                              or workers < 1):  # fmt: skip
        raise ValueError(f"workers must be 'auto' or a positive integer, not {workers!r}")
    device = str(model.device)
    budget = threads if threads is not None else cpu_cores()
    count = auto_workers(model, device) if workers == "auto" else int(workers)
    if workers == "auto":
        count = min(count, budget)
    if count > 1 and (backend != "hf" or model_dir is None or device != "cpu"):
        logger.info("worker processes need the hf backend on CPU and a model directory: 1")
        count = 1
    if count < 2:
        return None
    spec = WorkerSpec(str(model_dir), graph=graph, threads=max(1, budget // count))
    return WorkerPool(spec, count)


def workers_arg(text: str) -> int | str:
    """The ``--workers`` command-line value: ``auto`` or a positive integer."""
    import argparse

    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer, not {text!r}")
    return value


def _bootstrap(conn: Any, spec: WorkerSpec, stop: Any) -> None:  # pragma: no cover
    """A worker process's start: ignore Ctrl-C (the calling process handles it and stops
    us), exit with the parent, then run ``spec.entry`` (``module:function``, called with the
    connection, the spec and the stop event). Named, not imported here, so that this pool
    depends on nothing above it (the pipeline's entry:
    :func:`llamo_plugin.runtime.serve_worker`)."""
    import importlib
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    module, _, name = spec.entry.partition(":")
    getattr(importlib.import_module(module), name)(conn, spec, stop)


def _exit_with_parent() -> None:  # pragma: no cover - subprocess
    """End this worker as soon as its parent is gone (e.g. killed with SIGKILL, which no
    handler sees): a thread waits on the parent's sentinel, then exits the process. Without
    it a busy worker ran on until it met the broken pipe."""
    import multiprocessing
    import threading

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, name="llamo-parent-watch", daemon=True).start()


class WorkerPool:
    """``workers`` processes, each running the prepare + decode stages on its shard.

    Use as a context manager or call :meth:`close`; the processes also end with the calling
    process (daemon processes) or when the pool is garbage-collected.
    """

    def __init__(self, spec: WorkerSpec, workers: int, *, start_timeout_s: float = 600.0):
        import multiprocessing

        if workers < 1:
            raise ValueError(f"workers must be >= 1, not {workers}")
        self.spec = spec
        self.workers = workers
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._procs: list[Any] = []
        self._conns: list[Any] = []
        for i in range(workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_bootstrap, args=(child, spec, self._stop), name=f"llamo-worker-{i}"
            )
            proc.daemon = True
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)
        self._finalizer = weakref.finalize(self, _shutdown, self._procs, self._conns, self._stop)
        self.checksum: str | None = None
        try:
            for i, reply in enumerate(self._collect(range(workers), None, start_timeout_s)):
                kind, value = reply
                if kind != "ready":
                    raise WorkerError(f"worker {i} could not load {spec.model_dir}:\n{value}")
                self.checksum = value
        except BaseException:
            self.close()
            raise
        logger.info("%d worker processes ready (%d threads each)", workers, spec.threads)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (idempotent)."""
        self._finalizer()

    def _died(self, i: int) -> WorkerError:
        """Close the pool after worker ``i`` was found dead; the error to raise."""
        self.close()
        code = self._procs[i].exitcode
        return WorkerError(f"worker {i} exited (code {code}); the pool is closed")

    def _collect(
        self, indices: Sequence[int], should_stop: ShouldStop | None, timeout_s: float | None
    ) -> list[tuple[str, Any]]:
        """One reply from each worker in ``indices`` (in that order). Polls ``should_stop``
        while waiting and, once it is true, sets the shared stop event; raises
        :class:`WorkerError` if a worker dies."""
        from multiprocessing.connection import wait

        pending = {self._conns[i]: i for i in indices}
        replies: dict[int, tuple[str, Any]] = {}
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while pending:
            if should_stop is not None and not self._stop.is_set() and should_stop():
                self._stop.set()
            for conn in wait(list(pending), timeout=0.05):
                i = pending.pop(conn)  # type: ignore[call-overload]
                try:
                    replies[i] = conn.recv()
                except EOFError:
                    raise self._died(i) from None
            for conn, i in list(pending.items()):
                if not self._procs[i].is_alive() and not conn.poll():
                    raise self._died(i)
            if deadline is not None and time.monotonic() > deadline:
                self.close()
                raise WorkerError(f"workers did not answer within {timeout_s:.0f} s")
        return [replies[i] for i in indices]

    def answer(
        self,
        items: Sequence[tuple[Any, str]],
        decode: DecodeConfig,
        *,
        should_stop: ShouldStop | None = None,
    ) -> list[Generation]:
        """Answers for ``(ParsedMolecule, instruction)`` items, in order; item ``j`` goes to
        worker ``j % workers``. Raises ``CancelledError`` when ``should_stop()`` turns true
        (no partial answers), :class:`WorkerError` when a worker fails."""
        if not self._finalizer.alive:
            raise WorkerError("the worker pool is closed")
        shards = [list(items[i :: self.workers]) for i in range(self.workers)]
        used = [i for i, shard in enumerate(shards) if shard]
        self._stop.clear()
        for i in used:
            try:
                self._conns[i].send((shards[i], decode))
            except OSError:  # its end of the pipe is gone
                raise self._died(i) from None
        try:
            replies = self._collect(used, should_stop, None)
        except BaseException:  # e.g. Ctrl-C while waiting: replies would be left unread
            self.close()
            raise
        self._stop.clear()
        errors = [f"worker {i}:\n{v}" for i, (k, v) in zip(used, replies, strict=True)
                  if k == "error"]  # fmt: skip
        if errors:
            raise WorkerError("\n".join(errors))
        if any(kind == "cancelled" for kind, _ in replies):
            raise CancelledError("generation cancelled")
        out: list[Generation | None] = [None] * len(items)
        for i, (_, gens) in zip(used, replies, strict=True):
            for j, gen in enumerate(gens):
                out[i + j * self.workers] = gen
        return [g for g in out if g is not None]


def _shutdown(procs: list[Any], conns: list[Any], stop: Any) -> None:
    """Ask every worker to stop (a busy one cancels its request first), then make sure it
    has."""
    stop.set()
    for conn in conns:
        with contextlib.suppress(OSError, ValueError):
            conn.send(None)
    for proc in procs:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)
    for conn in conns:
        conn.close()
