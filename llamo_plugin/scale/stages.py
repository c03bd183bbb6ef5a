"""The two stages a Ray Data run maps over its rows (:mod:`llamo_plugin.scale.ray_engine`).

1. :func:`read_shards` (Ray tasks): reads input tables with the same readers as ``llamo
   annotate`` (:func:`llamo_plugin.tables.read_batches`, so SDF records RDKit cannot read stay
   rows with a status) and yields one record per block of rows: its shard, first row, and the
   rows themselves as an Arrow IPC payload, skipping shards the output folder already holds.
   The rows travel packed so that Ray never unifies the schemas of different input files
   (a batch holding rows of two files would otherwise give each the other's columns).
2. :class:`AnnotateActor` (a Ray actor pool, one model replica per actor): annotates a batch
   with :class:`~llamo_plugin.annotate.Annotator`, exactly as ``llamo annotate`` does, writes
   it as parts of its shards and returns one small record per part (the driver follows the
   shards' progress from them).

Neither imports Ray: they are plain callables Ray runs in its workers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamo_plugin.annotate import AnnotateOptions
from llamo_plugin.scale.shards import ROW_COLUMN, InputFile, OutputFolder, shard_name

logger = logging.getLogger(__name__)


def read_shards(items: Any, *, output: str, shard_rows: int, batch_rows: int) -> Iterator[Any]:
    """Ray ``map_batches`` function over a batch of input-file items (``path``, ``stem``):
    yield one record per block of at most ``batch_rows`` rows of one shard (``shard``,
    ``first_row`` within the shard, ``rows``, ``payload``: the rows, :func:`pack`;
    ``read_errors``: JSON list, per row); record each shard's row count in the output folder
    once all its rows are read. Finished shards are read past, not yielded."""
    import pandas as pd

    from llamo_plugin.tables import read_batches

    folder = OutputFolder(output)
    for path, stem in zip(items["path"], items["stem"], strict=True):
        file = InputFile(str(path), str(stem))
        offset = 0  # rows of this file read so far
        for batch in read_batches(Path(file.path), min(batch_rows, shard_rows)):
            start = 0
            while start < len(batch.frame):  # cut the batch at shard boundaries
                index, first = divmod(offset, shard_rows)
                n = min(len(batch.frame) - start, shard_rows - first)
                shard = shard_name(file.stem, index)
                offset += n
                piece = slice(start, start + n)
                start += n
                if folder.is_done(shard):
                    continue
                if first + n == shard_rows:
                    folder.write_row_count(shard, shard_rows)
                errors = batch.read_errors[piece] if batch.read_errors else (None,) * n
                yield pd.DataFrame(
                    {"shard": [shard], "first_row": [first], "rows": [n],
                     "payload": [pack(batch.frame.iloc[piece])],
                     "read_errors": [json.dumps(list(errors))]}
                )  # fmt: skip
        last = shard_name(file.stem, offset // shard_rows)
        if (offset % shard_rows or offset == 0) and not folder.is_done(last):
            # the last, partial shard (or an empty file's only one)
            folder.write_row_count(last, offset % shard_rows)


@dataclass(frozen=True)
class ActorSpec:
    """What each model replica is built from (pickled to the Ray workers)."""

    options: AnnotateOptions
    output: str
    model: str | None = None
    device: str = "auto"
    backend: str = "hf"
    cache_path: str | None = None
    smiles_column: str | None = None
    threads: int = 1


class AnnotateActor:
    """One model replica (Ray ``map_batches`` with an actor pool): ``__call__`` annotates a
    batch of rows, writes them as parts of their shards and returns one record per part
    (``shard``, ``first_row``, ``rows``, ``stats``: JSON of the batch's
    :class:`~llamo_plugin.annotate.AnnotateStats`, on the batch's first record only;
    ``error``: with ``fail_on_error``, JSON of the first bad row, and nothing written)."""

    def __init__(self, spec: ActorSpec) -> None:
        from llamo_plugin.annotate import Annotator
        from llamo_plugin.runtime import load_pipeline
        from llamo_plugin.workers import set_process_threads

        set_process_threads(spec.threads)
        self.spec = spec
        self.pipeline = load_pipeline(
            spec.model,
            device=spec.device,
            backend=spec.backend,  # type: ignore[arg-type]
            cache_path=spec.cache_path,
            workers=1,
            graph_threads=spec.threads,
        )
        self.annotator = Annotator(self.pipeline, spec.options)
        self.columns = self.annotator.columns()
        self.folder = OutputFolder(spec.output)

    def __call__(self, batch: Any) -> Any:
        """Annotate the blocks of ``batch`` (records of :func:`read_shards`) in one model
        call, write each block as a part of its shard, return one record per block."""
        import pandas as pd

        from llamo_plugin.annotate import AnnotateStats, RowError, append_columns
        from llamo_plugin.tables import find_smiles_column

        opts = self.spec.options
        blocks = [unpack(p) for p in batch["payload"]]
        smiles: list[Any] = []
        questions: list[Any] | None = [] if opts.question_column else None
        read_errors: list[str | None] = []
        for frame, errors in zip(blocks, batch["read_errors"], strict=True):
            smiles += list(frame[find_smiles_column(list(frame.columns), self.spec.smiles_column)])
            if questions is not None:
                questions += list(frame[opts.question_column])
            read_errors += json.loads(errors)
        self.annotator.stats = AnnotateStats()
        shards = [str(x) for x in batch["shard"]]
        firsts = [int(x) for x in batch["first_row"]]
        try:
            out = self.annotator.annotate(smiles, questions, read_errors=read_errors)
        except RowError as exc:  # fail_on_error: the driver stops the run and reports it
            block, offset = _locate(exc.row, [len(b) for b in blocks])
            where = {"shard": shards[block], "row": firsts[block] + offset,
                     "value": str(smiles[exc.row]), "reason": exc.reason}  # fmt: skip
            return pd.DataFrame(
                {"shard": [shards[block]], "first_row": [-1], "rows": [0], "stats": [""],
                 "error": [json.dumps(where)]}
            )  # fmt: skip
        stats = json.dumps(self.annotator.stats.as_dict())
        start = 0
        for frame, shard, first in zip(blocks, shards, firsts, strict=True):
            n = len(frame)
            part = append_columns(frame, {k: v[start : start + n] for k, v in out.items()},
                                  self.columns)  # fmt: skip
            part[ROW_COLUMN] = range(first, first + n)
            self.folder.write_part(shard, first, part)
            start += n
        return pd.DataFrame(
            {"shard": shards, "first_row": firsts, "rows": [len(b) for b in blocks],
             "stats": [stats] + [""] * (len(blocks) - 1), "error": [""] * len(blocks)}
        )  # fmt: skip


def pack(frame: Any) -> bytes:
    """Rows (pandas) as Arrow IPC stream bytes (:func:`unpack` restores them)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def unpack(payload: bytes) -> Any:
    import pyarrow as pa

    return pa.ipc.open_stream(pa.py_buffer(payload)).read_all().to_pandas()


def _locate(row: int, sizes: list[int]) -> tuple[int, int]:
    """(block, offset in the block) of ``row`` of the concatenated blocks."""
    for block, size in enumerate(sizes):
        if row < size:
            return block, row
        row -= size
    raise IndexError(row)
