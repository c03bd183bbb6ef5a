"""What every builder shares: inputs, the split plan and the exclusion.

:func:`make_context` is run once per build (``build_all``) and handed to each builder, so the
evaluation keys, the held-out slices and the QM9 table are computed once. A builder called
alone makes its own.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llamo_plugin.train.exclusion import EVAL_GROUPS, Exclusion, eval_keys
from llamo_plugin.train.sources import (
    MolIdentity,
    Qm9Row,
    default_cache_dir,
    default_data_dir,
    mol_identity,
    read_qm9,
)
from llamo_plugin.train.splits import (
    DEFAULT_N_DESCRIPTION_VAL,
    DEFAULT_N_QM9_VAL,
    N_PROPERTY_TEST,
    PoolMolecule,
    SplitPlan,
    default_splits_dir,
    make_plan,
    seeded_order,
)

logger = logging.getLogger(__name__)


@dataclass
class BuildContext:
    """Inputs and held-out molecules of one build.

    Attributes:
        data_dir: the ``shared/data`` folder.
        cache_dir: where expensive intermediate results are cached.
        splits_dir: where the committed test splits live.
        plan: the held-out slices.
        exclusion: evaluation sets + NCI + every held-out slice.
        qm9: all QM9 rows.
    """

    data_dir: Path
    cache_dir: Path
    splits_dir: Path
    plan: SplitPlan
    exclusion: Exclusion
    qm9: list[Qm9Row] = field(repr=False)

    @property
    def eval_exclusion(self) -> Exclusion:
        """Evaluation sets and NCI only."""
        return self.exclusion.restricted(EVAL_GROUPS)

    def skip_reason(self, identity: MolIdentity) -> str | None:
        """Why a molecule may not be trained on (``eval:<set>`` / ``held-out:<slice>``)."""
        reasons = self.exclusion.reasons(identity)
        if not reasons:
            return None
        evals = [r for r in reasons if r in EVAL_GROUPS]
        return f"eval:{evals[0]}" if evals else f"held-out:{reasons[0]}"

    def val_molecules(self) -> list[PoolMolecule]:
        """Val molecules for tasks other than description: both val slices minus test ones."""
        test = self.plan.test_keys
        return [
            m for m in (*self.plan.description_val, *self.plan.qm9_val) if m.inchikey not in test
        ]

    def iter_training(
        self,
        candidates: Sequence[tuple[str, str]],
        *,
        source: str,
        seed: int,
        salt: str,
        skipped: Counter[str],
        max_molecules: int | None = None,
        seen: set[str] | None = None,
    ) -> Iterator[PoolMolecule]:
        """Training molecules of ``(ident, smiles)`` candidates, in seeded order.

        Skips unparseable SMILES, excluded molecules and repeats (same canonical isomeric
        SMILES, tracked in ``seen`` across calls); stops after ``max_molecules``.
        """
        seen = seen if seen is not None else set()
        n = 0
        for i in seeded_order(len(candidates), seed=seed, salt=salt):
            if max_molecules is not None and n >= max_molecules:
                break
            ident, smiles = candidates[i]
            identity = mol_identity(smiles)
            if identity is None:
                skipped["unparseable"] += 1
                continue
            reason = self.skip_reason(identity)
            if reason is not None:
                skipped[reason] += 1
                continue
            if identity.smiles in seen:
                skipped["duplicate"] += 1
                continue
            seen.add(identity.smiles)
            n += 1
            yield PoolMolecule.of(source, ident, identity)

    def iter_qm9_and_chebi(
        self,
        *,
        seed: int,
        salt: str,
        skipped: Counter[str],
        max_molecules: int | None = None,
    ) -> Iterator[PoolMolecule]:
        """The shared training pool: QM9 molecules, then ChEBI-20 validation molecules, each in
        seeded order, de-duplicated across both (see :meth:`iter_training`)."""
        from llamo_plugin.train.sources import CHEBI_VAL, QM9, read_chebi

        seen: set[str] = set()
        yield from self.iter_training(
            [(str(r.index), r.smiles) for r in self.qm9],
            source=QM9,
            seed=seed,
            salt=salt,
            skipped=skipped,
            max_molecules=max_molecules,
            seen=seen,
        )
        chebi = read_chebi(self.data_dir, "validation")
        yield from self.iter_training(
            [(r.cid, r.smiles) for r in chebi],
            source=CHEBI_VAL,
            seed=seed,
            salt=salt,
            skipped=skipped,
            max_molecules=max_molecules,
            seen=seen,
        )


def make_context(
    data_dir: Path | None = None,
    *,
    split_seed: int = 0,
    match: str = "inchikey",
    cache_dir: Path | None = None,
    splits_dir: Path | None = None,
    n_description_val: int = DEFAULT_N_DESCRIPTION_VAL,
    n_qm9_val: int = DEFAULT_N_QM9_VAL,
    n_property_test: int = N_PROPERTY_TEST,
) -> BuildContext:
    """Read the inputs, compute the evaluation keys and choose the held-out slices."""
    t0 = time.perf_counter()
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    splits_dir = Path(splits_dir) if splits_dir is not None else default_splits_dir()
    evals = Exclusion(eval_keys(data_dir, cache_dir=cache_dir), match)
    qm9 = read_qm9(data_dir)
    plan = make_plan(
        data_dir,
        split_seed=split_seed,
        blocked=evals.excludes,
        n_description_val=n_description_val,
        n_qm9_val=n_qm9_val,
        n_property_test=n_property_test,
        splits_dir=splits_dir,
        qm9=qm9,
    )
    exclusion = Exclusion({**evals.keys, **plan.held_out_keys}, match)
    logger.info("context: exclusion %s (%.1f s)", exclusion.summary(), time.perf_counter() - t0)
    return BuildContext(data_dir, cache_dir, splits_dir, plan, exclusion, qm9)


def pick(rng: random.Random, options: Sequence[str]) -> str:
    """One of ``options``, drawn with ``rng``."""
    return options[rng.randrange(len(options))]
