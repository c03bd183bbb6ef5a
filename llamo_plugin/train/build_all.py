"""Build every training file into one folder, with a manifest.

Order: one shared context (evaluation keys, held-out slices), then property, description,
QA, IUPAC (slow the first time: names are generated and cached), facts (which uses the
IUPAC names), the drug-like PubChem gaps and the structure-only records of the ChEBI-20
train molecules. The manifest (``manifest.json``) lists every file's records per split, bytes
and sha256, each builder's statistics and wall time, the exclusion sizes and tool versions.

Default output: ``data/build/`` under the repository root (git-ignored by the ``build/``
pattern); only ``llamo_plugin/resources/splits/*`` is meant to be committed.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llamo_plugin.train.context import BuildContext, make_context
from llamo_plugin.train.records import BuildStats
from llamo_plugin.train.sources import repo_root, sha256_file

logger = logging.getLogger(__name__)

TASKS: tuple[str, ...] = (
    "property",
    "description",
    "description_rag",
    "qa",
    "iupac",
    "facts",
    "pubchem_gap",
    "chebi20_train",
)
MANIFEST = "manifest.json"


def default_out_dir() -> Path:
    """``<repo>/data/build``."""
    return repo_root() / "data" / "build"


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("rdkit", "openclatura", "py2opsin", "llamo-plugin"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def _file_entry(path: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    if path.suffix == ".jsonl":
        splits: Counter[str] = Counter()
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    splits[json.loads(line)["split"]] += 1
        entry["records"] = sum(splits.values())
        entry["splits"] = dict(splits)
    return entry


def _earlier_builders(out_dir: Path, seed: int, split_seed: int) -> dict[str, Any]:
    """Builder entries of the folder's previous manifest (same seeds) whose files are all
    still there: a run of some tasks keeps the record of the others."""
    path = out_dir / MANIFEST
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if old.get("seed") != seed or old.get("split_seed") != split_seed:
        return {}
    return {
        task: entry
        for task, entry in (old.get("builders") or {}).items()
        if all((out_dir / f).is_file() for f in entry.get("files", {}).values())
    }


def build_all(
    data_dir: Path | None = None,
    out_dir: Path | None = None,
    *,
    seed: int = 0,
    split_seed: int = 0,
    match: str = "inchikey",
    tasks: Sequence[str] = TASKS,
    max_molecules: int | None = None,
    cache_dir: Path | None = None,
    write_splits: bool = False,
    context: BuildContext | None = None,
) -> dict[str, Any]:
    """Run the builders of ``tasks`` into ``out_dir``; write and return the manifest.

    ``context`` (default: made from ``data_dir``, ``split_seed``, ``match``, ``cache_dir``)
    lets a caller reuse one, e.g. with smaller held-out slices.
    """
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; known: {TASKS}")
    t0 = time.perf_counter()
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = context or make_context(data_dir, split_seed=split_seed, match=match, cache_dir=cache_dir)
    context_s = time.perf_counter() - t0

    from llamo_plugin.train import (
        build_chebi20_train,
        build_description,
        build_description_rag,
        build_facts,
        build_iupac,
        build_property,
        build_pubchem_gap,
        build_qa,
    )

    stats: dict[str, BuildStats] = {}
    for task in TASKS:
        if task not in tasks:
            continue
        logger.info("build: %s ...", task)
        if task == "property":
            stats[task] = build_property.build(
                out_dir=out_dir,
                seed=seed,
                max_molecules=max_molecules,
                write_splits=write_splits,
                context=ctx,
            )
        elif task == "description":
            stats[task] = build_description.build(out_dir=out_dir, seed=seed, context=ctx)
        elif task == "description_rag":
            stats[task] = build_description_rag.build(out_dir=out_dir, seed=seed, context=ctx)
        elif task == "qa":
            stats[task] = build_qa.build(
                out_dir=out_dir,
                seed=seed,
                max_molecules=max_molecules,
                write_splits=write_splits,
                context=ctx,
            )
        elif task == "iupac":
            stats[task] = build_iupac.build(
                out_dir=out_dir, seed=seed, max_molecules=max_molecules, context=ctx
            )
        elif task == "facts":
            stats[task] = build_facts.build(
                out_dir=out_dir, seed=seed, max_molecules=max_molecules, context=ctx
            )
        elif task == "pubchem_gap":
            stats[task] = build_pubchem_gap.build(
                out_dir=out_dir,
                seed=seed,
                max_molecules=max_molecules,
                write_splits=write_splits,
                context=ctx,
            )
        elif task == "chebi20_train":
            stats[task] = build_chebi20_train.build(
                out_dir=out_dir, seed=seed, max_molecules=max_molecules, context=ctx
            )
        logger.info("build: %s done in %.1f s", task, stats[task].wall_s)

    files = sorted(
        p
        for p in out_dir.iterdir()
        if p.is_file() and p.name != MANIFEST and not p.name.endswith(".tmp")
    )
    manifest: dict[str, Any] = {
        "format_version": 1,
        "seed": seed,
        "split_seed": ctx.plan.split_seed,
        "match": ctx.exclusion.match,
        "max_molecules": max_molecules,
        "data_dir": str(ctx.data_dir),
        "versions": _versions(),
        "exclusion": ctx.exclusion.summary(),
        "held_out": {
            "description_val": len(ctx.plan.description_val),
            "qm9_val": len(ctx.plan.qm9_val),
            "property_test": len(ctx.plan.property_test),
            "qa_test_molecules": len(ctx.plan.qa_test),
            "property_test_from_file": ctx.plan.property_test_from_file,
            "qa_test_from_file": ctx.plan.qa_test_from_file,
        },
        "context_s": round(context_s, 2),
        "builders": {
            **_earlier_builders(out_dir, seed, ctx.plan.split_seed),
            **{task: s.to_dict() for task, s in stats.items()},
        },
        "files": {p.name: _file_entry(p) for p in files},
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    for s in manifest["builders"].values():  # paths relative to the output folder
        s["files"] = {k: os.path.relpath(v, out_dir) for k, v in s["files"].items()}
    tmp = out_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    tmp.replace(out_dir / MANIFEST)
    logger.info("build: wrote %s (%.1f s)", out_dir / MANIFEST, manifest["wall_s"])
    return manifest
