"""OPSIN round trip: does a (predicted) IUPAC name parse back to the intended structure?

OPSIN 2.9.0 is the jar bundled with the ``py2opsin`` package (Java 8+ needed). We run it once
per batch of names (names on stdin, SMILES on stdout, one line per name, blank on failure) with
UTF-8 set explicitly, rather than through ``py2opsin()``, which writes a temporary file into
the working directory and decodes with the console's encoding.

Statuses of :func:`roundtrip_status` (RDKit comparison of OPSIN's structure with the input):

- ``exact``: same canonical isomeric SMILES, or the same standard InChIKey (all 27
  characters: same constitution, charges, stereo and isotopes; InChI also merges mobile-H
  tautomers and different drawings of the same charged groups).
- ``stereo_differs``: not exact, but the same canonical SMILES once stereo is removed (wrong
  descriptors, or stereo given on one side and left undefined on the other, e.g.
  ``(2R)-butan-2-ol`` against ``CC(O)CC``).
- ``different_structure``: OPSIN parsed the name into some other molecule.
- ``unparseable``: OPSIN could not parse the name (or the name is empty/missing).
- ``invalid_smiles``: the reference SMILES itself does not parse (nothing to compare with).
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

OPSIN_JAR = "opsin-cli-2.9.0-jar-with-dependencies.jar"
STATUSES = ("exact", "stereo_differs", "different_structure", "unparseable", "invalid_smiles")


class OpsinUnavailableError(RuntimeError):
    """Java or the OPSIN jar is missing, or OPSIN did not answer."""


def opsin_jar() -> Path:
    """Path of the OPSIN jar shipped in the ``py2opsin`` package (without importing it)."""
    spec = importlib.util.find_spec("py2opsin")
    if spec is None or not spec.submodule_search_locations:
        raise OpsinUnavailableError("the py2opsin package (which bundles OPSIN) is not installed")
    for folder in spec.submodule_search_locations:
        jar = Path(folder) / OPSIN_JAR
        if jar.is_file():
            return jar
    raise OpsinUnavailableError(f"{OPSIN_JAR} not found in the py2opsin package")


def java_available() -> bool:
    """True if a ``java`` executable is on the PATH."""
    return shutil.which("java") is not None


def _clean_name(name: Any) -> str:
    if name is None or not isinstance(name, str):
        return ""
    return " ".join(name.split())  # one line per name: newlines/tabs would shift the output


def names_to_smiles(names: Sequence[Any], *, timeout: float = 600.0) -> list[str | None]:
    """OPSIN SMILES for each name (``None`` where OPSIN fails), in one Java call."""
    cleaned = [_clean_name(n) for n in names]
    if not cleaned:
        return []
    java = shutil.which("java")
    if java is None:
        raise OpsinUnavailableError("Java is not installed (OPSIN needs Java 8 or newer)")
    cmd = [
        java,
        "-Dfile.encoding=UTF-8",
        "-Dstdout.encoding=UTF-8",
        "-Dstdin.encoding=UTF-8",
        "-jar",
        str(opsin_jar()),
        "-osmi",
    ]
    # A blank line would make OPSIN print an empty line too, which keeps the alignment.
    stdin = "\n".join(cleaned) + "\n"
    try:
        done = subprocess.run(
            cmd, input=stdin.encode("utf-8"), capture_output=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OpsinUnavailableError(f"OPSIN failed to run: {exc}") from exc
    if done.returncode != 0:
        raise OpsinUnavailableError(
            f"OPSIN exited with {done.returncode}: {done.stderr.decode(errors='replace')[:500]}"
        )
    lines = done.stdout.decode("utf-8", errors="replace").replace("\r", "").split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]
    if len(lines) != len(cleaned):
        raise OpsinUnavailableError(f"OPSIN returned {len(lines)} lines for {len(cleaned)} names")
    return [
        line.strip() or None if name else None for name, line in zip(cleaned, lines, strict=True)
    ]


def _structure_keys(smiles: str | None) -> tuple[str, str, str] | None:
    """(canonical isomeric SMILES, canonical SMILES without stereo, InChIKey) or ``None``."""
    if not smiles:
        return None
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    iso = Chem.MolToSmiles(mol, isomericSmiles=True)
    flat = Chem.MolToSmiles(mol, isomericSmiles=False)
    try:
        key = Chem.MolToInchiKey(mol) or ""
    except Exception:
        key = ""
    return iso, flat, key


def compare_structures(predicted: str | None, reference: str | None) -> str:
    """Status of OPSIN's SMILES ``predicted`` against ``reference`` (see module docstring)."""
    ref = _structure_keys(reference)
    if ref is None:
        return "invalid_smiles"
    pred = _structure_keys(predicted)
    if pred is None:
        return "unparseable"
    if pred[0] == ref[0] or (pred[2] and pred[2] == ref[2]):
        return "exact"
    if pred[1] == ref[1]:
        return "stereo_differs"
    return "different_structure"


def roundtrip_status(names: Sequence[Any], smiles: Sequence[Any]) -> list[str]:
    """For each (name, SMILES) pair: does OPSIN parse the name back to that structure?

    Returns one of :data:`STATUSES` per pair. Names are parsed in one batch call.
    Raises :class:`OpsinUnavailableError` if Java/OPSIN cannot run.
    """
    if len(names) != len(smiles):
        raise ValueError(f"{len(names)} names but {len(smiles)} SMILES")
    parsed = names_to_smiles(names)
    return [
        compare_structures(p, s if isinstance(s, str) else None)
        for p, s in zip(parsed, smiles, strict=True)
    ]
