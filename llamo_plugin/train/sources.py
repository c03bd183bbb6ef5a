"""Readers of the datasets under ``../shared/data`` and RDKit's NCI molecules.

Every reader returns plain rows exactly as the files hold them; molecule identity (canonical
isomeric SMILES + InChIKey) comes from :func:`mol_identity`, memoised per process so that
several builders in one run parse each QM9 molecule once.

Files read (see each folder's ``SOURCE.md``):

- ``qm9/qm9_scalar_properties.csv`` (130,831 molecules, HOMO/LUMO/gap in Hartree);
- ``chebi-20/validation.txt`` (training) and ``chebi-20/test.txt`` (SMILES only, for exclusion);
- ``chebi-20-iupac-openclatura/chebi20_iupac_openclatura.tsv`` (names of ChEBI-20 molecules);
- evaluation sets: ``pubchem-iupac-cid1-1000``, ``chemllmbench-name-prediction``,
  ``freesolv``, ``stout-test`` (SMILES only);
- RDKit's ``Data/NCI`` subset (``first_5K.smi``, ``first_200.props.sdf``, ``*.tpsa.csv``),
  reserved for evaluation.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamo_plugin.errors import LlamoError

#: Source names used in records and exclusion reports.
QM9 = "qm9"
CHEBI_VAL = "chebi20-validation"
CHEBI_TRAIN = "chebi20-train"  # structures only: the captions are not available
CHEBI_TEST = "chebi20-test"
PCDES = "pcdes"
PUBCHEM_IUPAC = "pubchem-iupac-cid1-1000"
CHEMLLMBENCH = "chemllmbench-name-prediction"
FREESOLV = "freesolv"
STOUT = "stout-test"
RDKIT_NCI = "rdkit-nci"

#: Every evaluation set whose molecules never enter training.
EVAL_SETS: tuple[str, ...] = (CHEBI_TEST, PUBCHEM_IUPAC, CHEMLLMBENCH, FREESOLV, STOUT)


class BuildError(LlamoError):
    """A missing or malformed input file, or an inconsistent split file."""


def repo_root() -> Path:
    """The checkout this package lives in (``llamo_plugin/..``)."""
    return Path(__file__).resolve().parents[2]


def default_data_dir() -> Path:
    """``$LLAMO_SHARED/data`` if set, else ``<repo>/../shared/data``."""
    shared = os.environ.get("LLAMO_SHARED")
    if shared:
        return Path(shared) / "data"
    return repo_root().parent / "shared" / "data"


def default_cache_dir() -> Path:
    """``$LLAMO_BUILD_CACHE`` if set, else ``~/.cache/llamo-plugin/build``."""
    env = os.environ.get("LLAMO_BUILD_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "llamo-plugin" / "build"


def _require(path: Path) -> Path:
    if not path.is_file():
        raise BuildError(f"missing input file {path} (is ../shared/data available?)")
    return path


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- identity


@dataclass(frozen=True)
class MolIdentity:
    """How molecules are compared: canonical isomeric SMILES and standard InChIKey.

    ``inchikey`` falls back to ``"SMILES:" + smiles`` where InChI fails (rare).
    """

    smiles: str
    inchikey: str

    @property
    def skeleton(self) -> str:
        """First InChIKey block (connectivity only: ignores stereo, isotopes, protonation)."""
        return self.inchikey[:14] if not self.inchikey.startswith("SMILES:") else self.inchikey


def _rdkit() -> Any:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    return Chem


def identity_of_mol(mol: Any) -> MolIdentity:
    """Identity of an RDKit molecule."""
    chem = _rdkit()
    smiles = chem.MolToSmiles(mol, isomericSmiles=True, canonical=True)
    try:
        key = chem.MolToInchiKey(mol)
    except Exception:
        key = ""
    return MolIdentity(smiles=smiles, inchikey=key or f"SMILES:{smiles}")


#: Memo of :func:`mol_identity`, keyed by the input SMILES *and* by the canonical SMILES.
_IDENTITIES: dict[str, MolIdentity | None] = {}


def mol_identity(smiles: str) -> MolIdentity | None:
    """Identity of a SMILES string, or ``None`` when RDKit cannot parse it.

    Memoised per process under both the input and the canonical SMILES, so that builders
    re-identifying stored (canonical) SMILES do not parse and InChI them again.
    """
    if smiles in _IDENTITIES:
        return _IDENTITIES[smiles]
    from llamo_plugin.chem.smiles import mol_from_smiles
    from llamo_plugin.errors import InvalidSmilesError

    try:
        identity: MolIdentity | None = identity_of_mol(mol_from_smiles(smiles))
    except InvalidSmilesError:
        identity = None
    _IDENTITIES[smiles] = identity
    if identity is not None:
        _IDENTITIES.setdefault(identity.smiles, identity)
    return identity


def clear_identity_cache() -> None:
    """Forget every memoised identity (frees memory after a large build)."""
    _IDENTITIES.clear()


# --------------------------------------------------------------------------- training sets


@dataclass(frozen=True)
class Qm9Row:
    """One QM9 molecule (values in Hartree, as in the file)."""

    index: int
    smiles: str
    homo: float
    lumo: float
    gap: float


@dataclass(frozen=True)
class ChebiRow:
    """One ChEBI-20 row."""

    cid: str
    smiles: str
    description: str


@dataclass(frozen=True)
class ChebiNameRow:
    """One row of the openclatura names of ChEBI-20 molecules."""

    split: str
    cid: str
    smiles: str
    name: str
    opsin_roundtrip: str


def qm9_path(data_dir: Path) -> Path:
    return Path(data_dir) / "qm9" / "qm9_scalar_properties.csv"


def read_qm9(data_dir: Path) -> list[Qm9Row]:
    """All QM9 rows in file order."""
    rows = []
    with _require(qm9_path(data_dir)).open(newline="") as fh:
        for r in csv.DictReader(fh):
            rows.append(
                Qm9Row(
                    index=int(r["Index"]),
                    smiles=r["SMILES"],
                    homo=float(r["HOMO_au"]),
                    lumo=float(r["LUMO_au"]),
                    gap=float(r["HOMO_LUMO_gap_au"]),
                )
            )
    return rows


def read_chebi(data_dir: Path, split: str) -> list[ChebiRow]:
    """ChEBI-20 rows of ``split``; only ``validation`` (training data) is allowed here.

    ``test.txt`` is never read for its descriptions: :func:`read_eval_smiles` reads its SMILES
    column for the exclusion and nothing else.
    """
    if split != "validation":
        raise ValueError(f"only the ChEBI-20 validation split is training data, not {split!r}")
    path = _require(Path(data_dir) / "chebi-20" / f"{split}.txt")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [ChebiRow(r["CID"], r["SMILES"], r["description"]) for r in reader]


def read_chebi_train_structures(data_dir: Path) -> list[tuple[str, str]]:
    """``(CID, SMILES)`` of the ChEBI-20 *train* molecules (``chebi-20-train-smiles``; no
    captions). Structure-only training signals; the builders still exclude evaluation
    molecules by InChIKey."""
    path = _require(Path(data_dir) / "chebi-20-train-smiles" / "chebi20_train_smiles.tsv")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(r["CID"], r["SMILES"]) for r in reader if r["SMILES"].strip()]


def read_pcdes(data_dir: Path) -> list[ChebiRow]:
    """PCdes rows (KV-PLM; ``pcdes/SOURCE.md``) with their descriptions restyled as ChEBI-20
    writes them ("<name> is a ..." -> "The molecule is a ..."; matches ChEBI-20's caption
    exactly on 71 of the 87 rows both hold). Rows whose description names no subject
    (no " is " / " are ") are dropped. Training data only: the repository states no licence,
    so PCdes is never shipped."""
    path = _require(Path(data_dir) / "pcdes" / "pcdes_descriptions.tsv")
    rows: list[ChebiRow] = []
    with path.open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            text = restyle_pcdes(r["description"])
            if text is not None:
                rows.append(ChebiRow(r["CID"], r["SMILES"], text))
    return rows


def restyle_pcdes(text: str) -> str | None:
    """``"N-benzoylalanine is an N-acylamino acid ..."`` -> ``"The molecule is an N-acylamino
    acid ..."`` (the leading name, up to its first " is " / " are ", replaced)."""
    match = re.search(r" (is|are) ", text)
    if match is None:
        return None
    return "The molecule is " + text[match.end() :].strip()


def read_chebi_names(data_dir: Path) -> list[ChebiNameRow]:
    """The openclatura-named ChEBI-20 molecules (both splits, every round-trip status)."""
    path = _require(Path(data_dir) / "chebi-20-iupac-openclatura" / "chebi20_iupac_openclatura.tsv")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [
            ChebiNameRow(r["split"], r["CID"], r["SMILES"], r["iupac_name"], r["opsin_roundtrip"])
            for r in reader
        ]


# --------------------------------------------------------------------------- evaluation sets


def _eval_files(data_dir: Path) -> dict[str, list[Path]]:
    d = Path(data_dir)
    return {
        CHEBI_TEST: [d / "chebi-20" / "test.txt"],
        PUBCHEM_IUPAC: [d / "pubchem-iupac-cid1-1000" / "data.csv"],
        CHEMLLMBENCH: [d / "chemllmbench-name-prediction" / "llm_test.csv"],
        FREESOLV: [d / "freesolv" / "database.txt"],
        STOUT: [d / "stout-test" / "SMILES_test.txt"],
    }


def nci_files() -> list[Path]:
    """RDKit's NCI subset files (``RDConfig.RDDataDir/NCI``), sorted."""
    from rdkit import RDConfig

    folder = Path(RDConfig.RDDataDir) / "NCI"
    files = sorted(p for p in folder.glob("*") if p.suffix in (".smi", ".sdf", ".csv"))
    if not files:
        raise BuildError(f"RDKit's NCI molecules not found under {folder}")
    return files


def eval_input_files(data_dir: Path) -> list[Path]:
    """Every file the exclusion keys are computed from (for cache invalidation)."""
    files = [p for paths in _eval_files(data_dir).values() for p in paths]
    return [*files, *nci_files()]


def read_eval_smiles(data_dir: Path, name: str) -> list[str]:
    """SMILES of one evaluation set (all rows, whatever their label in the file)."""
    (path,) = _eval_files(data_dir)[name]
    _require(path)
    with path.open(newline="", encoding="utf-8") as fh:
        if name == CHEBI_TEST:
            reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            return [r["SMILES"] for r in reader]
        if name == PUBCHEM_IUPAC:
            return [r["SMILES"] for r in csv.DictReader(fh, delimiter=";")]
        if name == CHEMLLMBENCH:
            return [r["smiles"] for r in csv.DictReader(fh)]
        if name == FREESOLV:
            return [
                line.split(";")[1].strip()
                for line in fh
                if line.strip() and not line.startswith("#")
            ]
        if name == STOUT:
            return [line.strip() for line in fh if line.strip()]
    raise ValueError(f"unknown evaluation set {name!r}")


def read_nci_identities() -> list[MolIdentity]:
    """Identities of every parseable molecule in RDKit's NCI files."""
    chem = _rdkit()
    out: list[MolIdentity] = []
    for path in nci_files():
        if path.suffix == ".sdf":
            for mol in chem.SDMolSupplier(str(path)):
                if mol is not None and mol.GetNumAtoms():
                    out.append(identity_of_mol(mol))
            continue
        for smiles in _nci_smiles(path):
            ident = mol_identity(smiles)
            if ident is not None:
                out.append(ident)
    return out


def _nci_smiles(path: Path) -> Iterable[str]:
    with path.open() as fh:
        for line in fh:
            if not line.strip() or line.startswith("#"):
                continue
            if path.suffix == ".csv":
                yield line.split(",")[0].strip()
            else:
                yield line.split()[0]
