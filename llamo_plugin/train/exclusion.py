"""InChIKeys that never enter training.

Two groups of molecules are excluded from every training file:

1. **evaluation molecules**: ChEBI-20 ``test.txt``, ``pubchem-iupac-cid1-1000``,
   ``chemllmbench-name-prediction`` (all 600 rows, whatever their label), ``freesolv``,
   ``stout-test``, and RDKit's NCI subset (``RDConfig.RDDataDir/NCI``: ``first_5K.smi``,
   ``first_200.props.sdf`` and the two ``*.tpsa.csv`` files), reserved for evaluation;
2. **held-out slices** of the training pools (:mod:`llamo_plugin.train.splits`): the
   description val slice, the QM9 val slice, the committed QM9 property test split and the
   molecules of the committed QA test file.

Molecules are compared by standard InChIKey (``match="inchikey"``, stereo- and
isotope-aware; standard InChI also merges mobile-H tautomers) or, stricter, by its first
block (``match="skeleton"``: also excludes stereoisomers and protonation states of an
excluded molecule). SMILES that RDKit cannot parse cannot be matched and are reported as not
excluded (builders drop them anyway).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from llamo_plugin.train.sources import (
    EVAL_SETS,
    RDKIT_NCI,
    MolIdentity,
    default_cache_dir,
    default_data_dir,
    eval_input_files,
    mol_identity,
    read_eval_smiles,
    read_nci_identities,
    sha256_file,
)

logger = logging.getLogger(__name__)

MATCH_MODES: tuple[str, ...] = ("inchikey", "skeleton")
#: Names of the evaluation groups (as opposed to held-out slices).
EVAL_GROUPS: tuple[str, ...] = (*EVAL_SETS, RDKIT_NCI)
#: Bump when the way evaluation keys are computed changes (invalidates the cache).
_EVAL_KEYS_VERSION = 1


@dataclass(frozen=True)
class Exclusion:
    """Named InChIKey sets and a matching rule.

    Attributes:
        keys: group name (evaluation set, ``rdkit-nci`` or held-out slice) -> InChIKeys.
        match: ``inchikey`` (full key) or ``skeleton`` (first 14 characters).
    """

    keys: Mapping[str, frozenset[str]]
    match: str = "inchikey"
    _index: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.match not in MATCH_MODES:
            raise ValueError(f"match must be one of {MATCH_MODES}, got {self.match!r}")
        index: dict[str, list[str]] = {}
        for name, keys in self.keys.items():
            for key in keys:
                index.setdefault(self._fold(key), []).append(name)
        object.__setattr__(self, "_index", {k: tuple(v) for k, v in index.items()})

    def _fold(self, key: str) -> str:
        if self.match == "skeleton" and not key.startswith("SMILES:"):
            return key[:14]
        return key

    def reasons(self, identity: MolIdentity) -> tuple[str, ...]:
        """The groups that exclude this molecule (empty when it may be trained on)."""
        return self._index.get(self._fold(identity.inchikey), ())

    def excludes(self, identity: MolIdentity) -> bool:
        """Whether this molecule must stay out of training."""
        return self._fold(identity.inchikey) in self._index

    def is_eval(self, identity: MolIdentity) -> bool:
        """Whether this molecule belongs to an evaluation set or RDKit's NCI molecules."""
        return any(r in EVAL_GROUPS for r in self.reasons(identity))

    def is_excluded(self, smiles: str) -> bool:
        """Whether the molecule of ``smiles`` must stay out of training."""
        identity = mol_identity(smiles)
        return identity is not None and self.excludes(identity)

    def restricted(self, names: tuple[str, ...]) -> Exclusion:
        """The same rule over a subset of the groups."""
        return Exclusion({n: k for n, k in self.keys.items() if n in names}, self.match)

    def summary(self) -> dict[str, int]:
        """Group name -> number of distinct keys (for the manifest)."""
        return {name: len(keys) for name, keys in self.keys.items()}


def _eval_cache_path(data_dir: Path, cache_dir: Path) -> Path:
    from rdkit import __version__ as rdkit_version

    digest = hashlib.sha256(f"v{_EVAL_KEYS_VERSION} rdkit {rdkit_version}".encode())
    for path in eval_input_files(data_dir):
        digest.update(f"{path.name} {sha256_file(path)}\n".encode())
    return cache_dir / f"eval_keys-{digest.hexdigest()[:16]}.json"


def compute_eval_keys(data_dir: Path) -> dict[str, frozenset[str]]:
    """InChIKeys of every evaluation set and of RDKit's NCI molecules (no cache)."""
    out: dict[str, frozenset[str]] = {}
    for name in EVAL_SETS:
        smiles = read_eval_smiles(data_dir, name)
        idents = [mol_identity(s) for s in smiles]
        keys = frozenset(i.inchikey for i in idents if i is not None)
        unparsed = sum(i is None for i in idents)
        logger.info(
            "exclusion: %s: %d rows, %d keys, %d unparseable",
            name,
            len(smiles),
            len(keys),
            unparsed,
        )
        out[name] = keys
    nci = read_nci_identities()
    out[RDKIT_NCI] = frozenset(i.inchikey for i in nci)
    logger.info("exclusion: %s: %d molecules, %d keys", RDKIT_NCI, len(nci), len(out[RDKIT_NCI]))
    return out


def eval_keys(
    data_dir: Path | None = None, *, cache_dir: Path | None = None, use_cache: bool = True
) -> dict[str, frozenset[str]]:
    """Evaluation keys, cached as JSON in ``cache_dir`` keyed by the input files' sha256."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if not use_cache:
        return compute_eval_keys(data_dir)
    cache = _eval_cache_path(data_dir, Path(cache_dir) if cache_dir else default_cache_dir())
    if cache.is_file():
        raw = json.loads(cache.read_text())
        return {name: frozenset(keys) for name, keys in raw.items()}
    keys = compute_eval_keys(data_dir)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + ".tmp")
    tmp.write_text(json.dumps({n: sorted(k) for n, k in keys.items()}))
    tmp.replace(cache)
    return keys
