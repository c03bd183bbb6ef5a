"""The inference pipeline used by the CLI, the KNIME nodes and worker processes alike.

A column of SMILES (and one instruction, or one per row) goes in; one :class:`RowResult` per
row comes out, in order, with a status. Steps:

1. parse every row (invalid or missing SMILES -> ``status="invalid_smiles"``, no exception);
2. deduplicate by (canonical isomeric SMILES, instruction);
3. look the unique requests up in the optional :class:`~llamo_plugin.cache.AnswerCache`;
4. for the misses, in chunks: featurise + encode the prompt + run the graph encoder
   (onnxruntime or PyTorch);
5. decode with the LM backend (``hf`` or ``vllm``), store each finished chunk in the cache.
   With a :class:`~llamo_plugin.workers.WorkerPool`, steps 4-5 of each chunk run in worker
   processes, one interleaved shard each (:meth:`Pipeline.answer_items`);
6. fan the answers out to every row that asked.

Progress is reported after each chunk; ``should_stop`` is checked between chunks and inside
generation, and raises :class:`~llamo_plugin.errors.CancelledError` (answers finished so far
are already cached).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from llamo_plugin.backends.base import LMBackend, PromptInputs, ShouldStop
from llamo_plugin.backends.graph_onnx import GraphEncoder
from llamo_plugin.cache import AnswerCache, cache_key
from llamo_plugin.chem.smiles import DEFAULT_LIMITS, SmilesLimits
from llamo_plugin.config import DecodeConfig
from llamo_plugin.errors import CancelledError, InvalidSmilesError, brief
from llamo_plugin.records import Generation, StopReason

if TYPE_CHECKING:  # the pool is handed in; pipeline.py never starts processes itself
    from llamo_plugin.workers import WorkerPool

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
RowStatus = Literal["ok", "invalid_smiles", "too_large", "missing_instruction"]


def row_error(status: str, exc: InvalidSmilesError) -> str:
    """The error text of a row whose SMILES was refused: its status, what is wrong, and the
    input quoted briefly, e.g. ``too_large: 100,000 characters (limit 5,000): 'CCC…'``."""
    if exc.reason == "too_large":
        what = exc.detail
    else:
        what = f"{exc.reason}, {exc.detail}" if exc.detail else exc.reason
    return f"{status}: {what}" if exc.smiles is None else f"{status}: {what}: {brief(exc.smiles)}"


@dataclass(frozen=True)
class RowResult:
    """One input row's answer.

    Attributes:
        status: ``ok``, or why there is no answer (then ``text`` is None and ``error``, which
            starts with the status, says more): ``invalid_smiles``, ``too_large`` (over the
            SMILES length or atom-count cap), ``missing_instruction``.
        text: the decoded answer.
        stop_reason: ``eos`` or ``length`` (the answer hit ``max_new_tokens``).
        cached: served from the persistent cache.
        canonical_smiles: RDKit canonical isomeric SMILES of the row (None when invalid).
    """

    smiles: Any
    status: RowStatus
    text: str | None = None
    error: str | None = None
    stop_reason: StopReason | None = None
    cached: bool = False
    canonical_smiles: str | None = None

    @property
    def outcome(self) -> str:
        """How the row ended in one word: its stop reason (``eos``/``length``) when it was
        answered, else its status (what evaluation tables record)."""
        return (self.stop_reason or "eos") if self.status == "ok" else self.status


@dataclass
class RunStats:
    """Counters of the last :meth:`Pipeline.run`."""

    rows: int = 0
    invalid: int = 0
    unique: int = 0
    cache_hits: int = 0
    generated: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


class Pipeline:
    """Answers instructions about molecules with one loaded model."""

    def __init__(
        self,
        model: Any,
        *,
        graph_encoder: GraphEncoder | None = None,
        backend: LMBackend | None = None,
        cache: AnswerCache | None = None,
        chunk_size: int | None = None,
        workers: WorkerPool | None = None,
    ) -> None:
        """
        Args:
            model: a :class:`~llamo_plugin.model.llamo.LlamoModel` (tokenizer, config, and
                the PyTorch graph encoder used when ``graph_encoder`` is None).
            graph_encoder: e.g. an :class:`~llamo_plugin.backends.graph_onnx.OnnxGraphEncoder`.
            backend: the LM backend (default: ``hf`` on the model's device).
            cache: persistent answer cache (None: no caching).
            chunk_size: unique molecules per work chunk (progress/cancel/cache granularity;
                None: 256 per worker process, or 256).
            workers: run the prepare + decode stages in these worker processes (they load
                the same model; ``graph_encoder`` and ``backend`` then serve only
                :meth:`answer_items` calls made in this process).
        """
        from llamo_plugin.backends.graph_onnx import TorchGraphEncoder
        from llamo_plugin.backends.hf import HFBackend

        self.model = model
        self.graph_encoder = graph_encoder or TorchGraphEncoder(model.graph)
        self.backend = backend or HFBackend(model)
        self.cache = cache
        self.workers = workers
        if workers is not None and workers.checksum != self.model.checksum:
            raise ValueError(
                f"the workers' model ({workers.checksum}) is not this pipeline's model "
                f"({self.model.checksum})"
            )
        per_chunk = 256 * (workers.workers if workers is not None else 1)
        self.chunk_size = chunk_size or per_chunk
        self.stats = RunStats()

    def close(self) -> None:
        """Stop the worker processes, if any, and close the answer cache."""
        if self.workers is not None:
            self.workers.close()
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def model_checksum(self) -> str:
        return self.model.checksum or f"unsaved:{id(self.model)}"

    # ------------------------------------------------------------------ helpers
    def _prepare_chunk(self, items: Sequence[tuple[Any, str]]) -> list[PromptInputs]:
        """Featurise, encode prompts and run the graph encoder for (molecule, instruction)."""
        from llamo_plugin.backends.graph_onnx import encode_in_buckets
        from llamo_plugin.chem.featurize import featurize
        from llamo_plugin.chem.smiles import prompt_smiles
        from llamo_plugin.prompt.assemble import encode_conversation

        config = self.model.config
        graphs = [featurize(mol) for mol, _ in items]
        prompts = [
            encode_conversation(
                self.model.tokenizer,
                prompt_smiles(mol, config.prompt.max_smiles_chars),
                instruction,
                config=config.prompt,
                num_graph_tokens=self.model.graph.num_graph_tokens,
            )
            for mol, instruction in items
        ]
        tokens = encode_in_buckets(self.graph_encoder, graphs)
        return [PromptInputs(p, tokens[i]) for i, p in enumerate(prompts)]

    def answer_items(
        self,
        items: Sequence[tuple[Any, str]],
        decode: DecodeConfig,
        *,
        should_stop: ShouldStop | None = None,
    ) -> list[Generation]:
        """Prepare and decode ``(ParsedMolecule, instruction)`` items in this process (no
        dedupe, no cache): what a worker process does with its shard of a chunk."""
        if not items:
            return []
        return self.backend.generate(self._prepare_chunk(items), decode, should_stop=should_stop)

    def _chunks(self, items: list[tuple[Any, str]]) -> Any:
        """Yield ``(chunk_items, prompt_inputs)``; with worker processes the inputs are None
        (the workers prepare). (Preparing the next chunk in a thread while the LM decodes
        was measured 4% slower on 2 cores and removed; docs/benchmarks.md.)"""
        for i in range(0, len(items), self.chunk_size):
            chunk = items[i : i + self.chunk_size]
            yield chunk, None if self.workers is not None else self._prepare_chunk(chunk)

    # --------------------------------------------------------------------- run
    def run(
        self,
        smiles: Sequence[Any],
        instruction: str | Sequence[str],
        *,
        task: str = "qa",
        decode: DecodeConfig | None = None,
        progress: Progress | None = None,
        should_stop: ShouldStop | None = None,
        limits: SmilesLimits = DEFAULT_LIMITS,
    ) -> list[RowResult]:
        """Answer ``instruction`` (one string, or one per row) for every SMILES, in order.

        ``task`` only names the request in cache keys (the instruction text decides what the
        model is asked). ``limits``: SMILES over them get status ``too_large`` unparsed.
        Raises ``CancelledError`` when ``should_stop()`` turns true.
        """
        from llamo_plugin.chem.smiles import parse_smiles

        t_start = time.perf_counter()
        decode = decode or self.model.config.decode
        n = len(smiles)
        if isinstance(instruction, str):
            instructions: Sequence[str] = [instruction] * n
        else:
            instructions = instruction
            if len(instructions) != n:
                raise ValueError(f"{len(instructions)} instructions for {n} SMILES")

        stats = RunStats(rows=n)
        results: list[RowResult | None] = [None] * n
        requests: dict[tuple[str, str], list[int]] = {}
        molecules: dict[tuple[str, str], Any] = {}
        for row, (s, instr) in enumerate(zip(smiles, instructions, strict=True)):
            if not isinstance(instr, str) or not instr.strip():
                results[row] = RowResult(
                    s, "missing_instruction", error="missing_instruction: no question"
                )
                stats.invalid += 1
                continue
            try:
                mol = parse_smiles(s, limits)
            except InvalidSmilesError as exc:
                status: RowStatus = "too_large" if exc.reason == "too_large" else "invalid_smiles"
                results[row] = RowResult(s, status, error=row_error(status, exc))
                stats.invalid += 1
                continue
            key = (mol.isomeric_smiles, instr.strip())
            requests.setdefault(key, []).append(row)
            molecules.setdefault(key, mol)
        stats.unique = len(requests)
        t_parse = time.perf_counter()

        keys = {k: cache_key(self.model_checksum, task, k[1], k[0], decode) for k in requests}
        answers: dict[tuple[str, str], tuple[Generation, bool]] = {}
        if self.cache is not None:
            stored = self.cache.get_many(keys.values())
            for k, ck in keys.items():
                if ck in stored:
                    answers[k] = (stored[ck], True)
        stats.cache_hits = len(answers)
        done = len(answers)
        if progress is not None:
            progress(done, stats.unique)

        # Similar SMILES lengths -> similar prompt lengths -> less padding per LM batch.
        todo = sorted((k for k in requests if k not in answers), key=lambda k: len(k[0]))
        t_decode = 0.0
        for chunk, inputs in self._chunks([(molecules[k], k[1]) for k in todo]):
            if should_stop is not None and should_stop():
                raise CancelledError("cancelled between batches")
            t0 = time.perf_counter()
            if self.workers is not None:
                gens = self.workers.answer(chunk, decode, should_stop=should_stop)
            else:
                gens = self.backend.generate(inputs, decode, should_stop=should_stop)
            t_decode += time.perf_counter() - t0
            fresh: dict[str, Generation] = {}
            for (mol, instr), gen in zip(chunk, gens, strict=True):
                k = (mol.isomeric_smiles, instr)
                answers[k] = (gen, False)
                fresh[keys[k]] = answers[k][0]
            if self.cache is not None:
                self.cache.put_many(fresh)
            stats.generated += len(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, stats.unique)

        for k, rows in requests.items():
            ans, cached = answers[k]
            for row in rows:
                results[row] = RowResult(
                    smiles[row],
                    "ok",
                    text=ans.text,
                    stop_reason=ans.stop_reason,
                    cached=cached,
                    canonical_smiles=k[0],
                )
        stats.seconds = time.perf_counter() - t_start
        stats.timings = {"parse": t_parse - t_start, "decode": t_decode}
        self.stats = stats
        return [r for r in results if r is not None]
