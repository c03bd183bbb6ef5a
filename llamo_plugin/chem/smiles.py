"""Stage 0: SMILES -> validated molecule.

RDKit returns ``None`` (and logs) on bad input; this module turns that into one typed error,
:class:`~llamo_plugin.errors.InvalidSmilesError`, in exactly one place.

>>> parse_smiles("OC(=O)c1ccccc1OC(C)=O").canonical_smiles
'CC(=O)Oc1ccccc1C(=O)O'
>>> prompt_smiles(parse_smiles("C[C@H](N)C(=O)O"))
'CC(N)C(=O)O'
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from llamo_plugin.errors import InvalidSmilesError
from llamo_plugin.records import ParsedMolecule

#: LLaMo cuts the SMILES in the prompt to this many characters (reference §6).
PROMPT_SMILES_MAX_CHARS = 128


def _rdkit_quiet() -> Any:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    return Chem


def _is_missing(value: Any) -> bool:
    if value is None or type(value).__name__ in {"NAType", "NaTType"}:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isnan(value)


def mol_from_smiles(smiles: Any) -> Any:
    """Parse ``smiles`` into an RDKit ``Mol``; raise ``InvalidSmilesError`` on any problem.

    Missing values (``None``, any NaN, ``pandas.NA``), empty or blank strings, strings with
    inner whitespace and unparseable strings are errors. RDKit itself would return an empty
    molecule for ``""`` and silently read ``"C C"`` as methane (text after a space is a name).
    """
    if _is_missing(smiles):
        raise InvalidSmilesError(None, "missing")
    if not isinstance(smiles, str):
        raise InvalidSmilesError(repr(smiles), "unparseable")
    text = smiles.strip()
    if not text:
        raise InvalidSmilesError(smiles, "empty")
    if any(ch.isspace() for ch in text):
        raise InvalidSmilesError(smiles, "unparseable")
    chem = _rdkit_quiet()
    mol = chem.MolFromSmiles(text)
    if mol is None or mol.GetNumAtoms() == 0:
        raise InvalidSmilesError(smiles, "unparseable")
    return mol


def canonical_smiles(mol: Any, *, isomeric: bool = False) -> str:
    """RDKit canonical SMILES; non-isomeric by default, as LLaMo uses it."""
    chem = _rdkit_quiet()
    return chem.MolToSmiles(mol, isomericSmiles=isomeric, canonical=True)


def parse_smiles(smiles: Any) -> ParsedMolecule:
    """Validate ``smiles`` and compute both canonical forms."""
    mol = mol_from_smiles(smiles)
    return ParsedMolecule(
        input_smiles=smiles.strip(),
        canonical_smiles=canonical_smiles(mol, isomeric=False),
        isomeric_smiles=canonical_smiles(mol, isomeric=True),
    )


def prompt_smiles(molecule: ParsedMolecule, max_chars: int = PROMPT_SMILES_MAX_CHARS) -> str:
    """The SMILES text LLaMo puts in the prompt: canonical, non-isomeric, cut to ``max_chars``."""
    return molecule.canonical_smiles[:max_chars]
