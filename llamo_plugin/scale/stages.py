"""The two stages a Ray Data run maps over its rows (:mod:`llamo_plugin.scale.ray_engine`).

1. :func:`read_shards` (Ray tasks): reads input tables with the same readers as ``llamo
   annotate`` (:func:`llamo_plugin.tables.read_batches`, so SDF records RDKit cannot read stay
   rows with a status) and yields blocks of rows tagged with their shard and row number,
   skipping shards the output folder already holds.
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
from llamo_plugin.scale.shards import (
    READ_ERROR_COLUMN,
    ROW_COLUMN,
    SHARD_COLUMN,
    InputFile,
    OutputFolder,
    shard_name,
)

logger = logging.getLogger(__name__)


def read_shards(items: Any, *, output: str, shard_rows: int, batch_rows: int) -> Iterator[Any]:
    """Ray ``map_batches`` function over a batch of input-file items (``path``, ``stem``):
    yield row blocks (pandas, at most ``batch_rows`` rows, never two shards in one) with the
    helper columns ``_llamo_shard``, ``_llamo_row`` (row number within the shard) and
    ``_llamo_read_error``; record each shard's row count in the output folder once all its
    rows are read. Finished shards are read past, not yielded."""
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
                frame = batch.frame.iloc[piece].copy()
                frame[SHARD_COLUMN] = shard
                frame[ROW_COLUMN] = range(first, first + n)
                errors = batch.read_errors[piece] if batch.read_errors else (None,) * n
                frame[READ_ERROR_COLUMN] = list(errors)
                yield frame
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
        import pandas as pd

        from llamo_plugin.annotate import AnnotateStats, RowError, append_columns
        from llamo_plugin.tables import find_smiles_column

        opts = self.spec.options
        inputs = [c for c in batch.columns if not c.startswith("_llamo_")]
        smiles_col = find_smiles_column(inputs, self.spec.smiles_column)
        questions = list(batch[opts.question_column]) if opts.question_column else None
        read_errors = [e if isinstance(e, str) else None for e in batch[READ_ERROR_COLUMN]]
        self.annotator.stats = AnnotateStats()
        try:
            out = self.annotator.annotate(
                list(batch[smiles_col]), questions, read_errors=read_errors
            )
        except RowError as exc:  # fail_on_error: the driver stops the run and reports it
            where = {
                "shard": str(batch[SHARD_COLUMN].iloc[exc.row]),
                "row": int(batch[ROW_COLUMN].iloc[exc.row]),
                "value": str(batch[smiles_col].iloc[exc.row]),
                "reason": exc.reason,
            }
            return pd.DataFrame(
                {"shard": [where["shard"]], "first_row": [-1], "rows": [0], "stats": [""],
                 "error": [json.dumps(where)]}
            )  # fmt: skip
        frame = append_columns(batch[inputs], out, self.columns)
        frame[ROW_COLUMN] = batch[ROW_COLUMN].to_numpy()
        stats = json.dumps(self.annotator.stats.as_dict())
        records: dict[str, list[Any]] = {
            "shard": [], "first_row": [], "rows": [], "stats": [], "error": []
        }  # fmt: skip
        shards = batch[SHARD_COLUMN].to_numpy()
        start = 0
        for end in [*_runs(shards), len(shards)]:  # consecutive rows of one shard
            if end == start:
                continue
            part = frame.iloc[start:end]
            first = int(part[ROW_COLUMN].iloc[0])
            self.folder.write_part(str(shards[start]), first, part)
            records["shard"].append(str(shards[start]))
            records["first_row"].append(first)
            records["rows"].append(end - start)
            records["stats"].append(stats if not records["stats"] else "")
            records["error"].append("")
            start = end
        return pd.DataFrame(records)


def _runs(values: Any) -> list[int]:
    """Indices where ``values`` changes (the starts of its runs, after the first)."""
    return [i for i in range(1, len(values)) if values[i] != values[i - 1]]
