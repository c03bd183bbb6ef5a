"""Annotate tables beyond one machine with Ray Data (``llamo annotate --engine ray``).

The plan is Ray Data's plain actor-pool pattern (Ray's LLM processor takes no prompt
embeddings, so it cannot feed LLaMo's graph tokens):

    input files --from_items--> read_shards (tasks) --map_batches--> AnnotateActor pool
        (one model replica per actor, ``num_gpus`` when GPUs exist) --> parts --> shard files

Rows stream block by block; each actor writes its annotated batches into the output folder
(:mod:`llamo_plugin.scale.shards`) and the driver joins a shard's parts into one Parquet
file as soon as the shard is complete. A rerun with the same settings skips finished shards.
The answers are those of ``llamo annotate`` (the same :class:`~llamo_plugin.annotate.Annotator`
per batch); tests compare the two engines row for row.

On a cluster, the input and output paths must be visible to every node under the same path
(a shared file system), and every node needs this package and the model directory
(docs/serving.md). ``ray`` is the optional extra ``pip install 'llamo-plugin[ray]'``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamo_plugin.annotate import AnnotateOptions, RowError, check_model_tasks, output_columns
from llamo_plugin.config import FrozenConfig
from llamo_plugin.errors import ConfigError, brief
from llamo_plugin.scale.shards import (
    InputFile,
    OutputFolder,
    describe_inputs,
    list_inputs,
)
from llamo_plugin.scale.stages import ActorSpec, AnnotateActor, read_shards

logger = logging.getLogger(__name__)

#: CPUs the read tasks ask for: a fraction, so that actors holding every CPU of a small
#: machine cannot starve them (a 2-CPU Ray with two 1-CPU actors otherwise hangs).
READ_TASK_CPUS = 0.25


@dataclass(frozen=True)
class RayOptions(FrozenConfig):
    """How the run uses Ray. Unknown keys are rejected."""

    #: Ray cluster address ("" : $RAY_ADDRESS if set, else a local Ray on this machine;
    #: "auto": the running cluster this machine belongs to)
    address: str = ""
    #: model replicas (0: one per GPU when the cluster has GPUs, else as many as the CPUs
    #: allow at ``cpus_per_actor`` each, keeping room for the read tasks)
    actors: int = 0
    #: CPUs (and torch threads) per replica
    cpus_per_actor: int = 1
    #: GPUs per replica (-1: 1 when the cluster has GPUs, else 0)
    gpus_per_actor: float = -1.0
    #: rows per model call (a block of one shard)
    batch_rows: int = 256
    #: rows per output shard (the unit of restart)
    shard_rows: int = 100_000

    def __post_init__(self) -> None:
        if self.actors < 0 or self.cpus_per_actor < 1:
            raise ConfigError("actors must be >= 0 and cpus_per_actor >= 1")
        if self.batch_rows < 1 or self.shard_rows < 1:
            raise ConfigError("batch_rows and shard_rows must be >= 1")
        if self.gpus_per_actor != -1.0 and self.gpus_per_actor < 0:
            raise ConfigError("gpus_per_actor must be >= 0 (or -1: automatic)")


@dataclass(frozen=True)
class RayRunSummary:
    """What a run did (``llamo annotate --engine ray`` prints it as JSON)."""

    output: str
    shards: int
    shards_skipped: int
    rows: int
    errors: dict[str, int]
    cache_hits: int
    generated: int
    actors: int
    seconds: float
    model_sha256: str

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def annotate_with_ray(
    input_path: str | Path,
    output_dir: str | Path,
    options: AnnotateOptions,
    *,
    model: str | Path | None = None,
    device: str = "auto",
    backend: str = "hf",
    cache_path: str | Path | None = None,
    smiles_column: str | None = None,
    ray_options: RayOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> RayRunSummary:
    """Annotate ``input_path`` (a table file or a folder of them) into ``output_dir`` (one
    Parquet file per shard) on Ray; rerun the same call to resume after an interruption.

    ``model`` None: the embedded model (every Ray node loads its own copy). ``progress`` is
    called with the number of rows each finished batch held. Unusable inputs, output folder
    or options raise :class:`~llamo_plugin.errors.LlamoError` subclasses before Ray starts.
    """
    from llamo_plugin.checkpoint.format import read_config, verify_manifest
    from llamo_plugin.registry import resolve_model_dir
    from llamo_plugin.tables import find_smiles_column, read_batches

    ropts = ray_options or RayOptions()
    t0 = time.perf_counter()
    files = list_inputs(Path(input_path))
    model_dir = resolve_model_dir(model)
    manifest = verify_manifest(model_dir, full=False)
    config = read_config(model_dir)
    check_model_tasks(options, config.tasks, config.name)
    retrieval = options.uses_retrieval(config.retrieval.default)
    floats = {c.key for c in output_columns(options, retrieval) if c.kind == "float"}
    for f in files:  # a wrong column is one error now, not a failure inside a Ray worker
        first = next(read_batches(Path(f.path), 1), None)
        if first is None:  # a header without rows: nothing to annotate in it
            continue
        find_smiles_column(list(first.frame.columns), smiles_column)
        if options.question_column and options.question_column not in first.frame.columns:
            raise ConfigError(f"{brief(f.path, 120)}: question column {options.question_column!r}")
    folder = OutputFolder(output_dir)
    folder.prepare(
        {
            "inputs": [f.path for f in files],
            "options": options.to_dict(),
            "model_sha256": manifest["model_sha256"],
            "smiles_column": smiles_column,
            "shard_rows": ropts.shard_rows,
        }
    )
    recovered, discarded = folder.recover(floats)
    if recovered or discarded:
        logger.info(
            "resuming: %d shard(s) finished from their parts, %d recomputed",
            len(recovered), len(discarded),
        )  # fmt: skip
    skipped = len(folder.done_shards())
    spec = ActorSpec(
        options=options,
        output=str(folder.root),
        model=None if model is None else str(model),
        device=device,
        backend=backend,
        cache_path=None if cache_path is None else str(cache_path),
        smiles_column=smiles_column,
        threads=ropts.cpus_per_actor,
    )
    stats = _run(files, folder, spec, ropts, floats, progress)
    return RayRunSummary(
        output=str(output_dir),
        shards=len(folder.done_shards()),
        shards_skipped=skipped,
        rows=stats["rows"],
        errors=dict(stats["errors"]),
        cache_hits=stats["cache_hits"],
        generated=stats["generated"],
        actors=stats["actors"],
        seconds=round(time.perf_counter() - t0, 2),
        model_sha256=manifest["model_sha256"],
    )


def _run(
    files: list[InputFile],
    folder: OutputFolder,
    spec: ActorSpec,
    ropts: RayOptions,
    floats: set[str],
    progress: Callable[[int], None] | None,
) -> dict[str, Any]:
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    if not logger.isEnabledFor(logging.DEBUG):  # Ray Data's per-dataset INFO lines
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=ropts.address or None,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=logger.isEnabledFor(logging.DEBUG),
        )
    try:
        resources = ray.cluster_resources()
        gpus = ropts.gpus_per_actor
        if gpus < 0:
            gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
        actors = ropts.actors or _auto_actors(resources, ropts.cpus_per_actor, gpus)
        logger.info(
            "ray: %s -> %s, %d actor(s) x %d CPU / %g GPU",
            describe_inputs(files), folder.root, actors, ropts.cpus_per_actor, gpus,
        )  # fmt: skip
        context = DataContext.get_current()
        context.enable_progress_bars = False
        items = [{"path": f.path, "stem": f.stem} for f in files]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        ds = ds.map_batches(
            read_shards,
            fn_kwargs={
                "output": str(folder.root),
                "shard_rows": ropts.shard_rows,
                "batch_rows": ropts.batch_rows,
            },
            batch_size=1,
            batch_format="pandas",
            num_cpus=READ_TASK_CPUS,
        )
        ds = ds.map_batches(
            AnnotateActor,
            fn_constructor_kwargs={"spec": spec},
            batch_size=1,  # one block of at most batch_rows rows of one shard per call
            batch_format="pandas",
            compute=ActorPoolStrategy(size=actors),
            num_cpus=ropts.cpus_per_actor,
            num_gpus=gpus,
        )
        totals: dict[str, Any] = {"rows": 0, "errors": Counter(), "cache_hits": 0,
                                  "generated": 0, "actors": actors}  # fmt: skip
        covered: Counter[str] = Counter()  # rows of each shard written this run
        for record in ds.iter_rows():
            if record["error"]:  # fail_on_error: stop at the first bad row
                bad = json.loads(record["error"])
                raise RowError(bad["row"], bad["value"], f"{bad['reason']} (shard {bad['shard']})")
            rows = int(record["rows"])
            totals["rows"] += rows
            if record["stats"]:
                s = json.loads(record["stats"])
                totals["errors"].update(s["errors"])
                totals["cache_hits"] += s["cache_hits"]
                totals["generated"] += s["generated"]
            shard = str(record["shard"])
            covered[shard] += rows
            total = folder.row_count(shard)
            # join a shard once its rows are all written, not at every part (its folder is
            # read only then: a shard of 100,000 rows has hundreds of parts)
            if total is not None and covered[shard] >= total:
                folder.finish(shard, floats)
            if progress is not None:
                progress(rows)
        for shard in folder.pending_part_shards():  # row counts written after their last batch
            if not folder.finish(shard, floats):
                raise RuntimeError(f"shard {shard}: rows missing after the run")
        return totals
    finally:
        if started_here:
            ray.shutdown()


def _auto_actors(resources: dict[str, float], cpus_per_actor: int, gpus: float) -> int:
    """One actor per GPU share, else as many as the CPUs allow beside the read tasks."""
    if gpus > 0:
        return max(1, math.floor(resources.get("GPU", 0) / gpus))
    cpus = resources.get("CPU", 1) - READ_TASK_CPUS
    return max(1, math.floor(cpus / cpus_per_actor))


__all__ = ["AnnotateActor", "RayOptions", "RayRunSummary", "annotate_with_ray"]
