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
import re
import string
from dataclasses import dataclass
from typing import Any

from llamo_plugin.config import FrozenConfig
from llamo_plugin.errors import ConfigError, InvalidSmilesError
from llamo_plugin.records import ParsedMolecule

#: LLaMo cuts the SMILES in the prompt to this many characters (reference §6).
PROMPT_SMILES_MAX_CHARS = 128

#: Every character OpenSMILES and RDKit's SMILES parser give a meaning to (``<``/``>``: RDKit's
#: dative bonds, ``[NH3]->[Cu+2]``). RDKit stops reading at some others without an error
#: (``"CCö"`` parsed as ethane), so they are refused before RDKit sees the string.
SMILES_ALPHABET = frozenset(string.ascii_letters + string.digits + "()[]=#$:/\\.%+-@*<>")
#: One atom of a SMILES string: a bracket atom, a two-letter organic-subset atom, a one-letter
#: one (aliphatic or aromatic) or a wildcard. Counting these bounds RDKit's atom count
#: (hydrogens in brackets are not atoms of their own) without parsing.
_ATOM_TOKEN = re.compile(r"\[[^\]]*\]|Br|Cl|[BCNOPSFI]|[bcnops]|\*")


@dataclass(frozen=True)
class SmilesLimits(FrozenConfig):
    """Caps checked before RDKit reads a SMILES, so that no single input can crash or stall
    a whole job (RDKit's canonicalisation overflows its stack between 10,000 and 20,000
    chained atoms and kills the process; a 40,000-atom chain took 19.5 s to parse).

    The defaults pass every molecule of ChEBI-20 (train, validation, test: at most 1,598
    characters and 574 heavy atoms), the PubChem sets and RDKit's NCI sample with room to
    spare (``tests/unit/chem/test_smiles_guards.py`` checks the shipped reference set).
    """

    max_chars: int = 5_000
    max_atoms: int = 1_000

    def __post_init__(self) -> None:
        if self.max_chars < 1 or self.max_atoms < 1:
            raise ConfigError("SMILES limits must be >= 1")


DEFAULT_LIMITS = SmilesLimits()


def _rdkit_quiet() -> Any:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    return Chem


def _is_missing(value: Any) -> bool:
    if value is None or type(value).__name__ in {"NAType", "NaTType"}:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isnan(value)


def check_smiles_text(smiles: Any, limits: SmilesLimits = DEFAULT_LIMITS) -> str:
    """The stripped SMILES text if it may be given to RDKit; else ``InvalidSmilesError``.

    Cheap (no parsing): missing values (``None``, any NaN, ``pandas.NA``), non-strings, empty
    or blank strings, inner whitespace (RDKit reads ``"C C"`` as methane: text after a space
    is a name), characters outside :data:`SMILES_ALPHABET`, and strings over ``limits``
    (reason ``too_large``).
    """
    if _is_missing(smiles):
        raise InvalidSmilesError(None, "missing")
    if not isinstance(smiles, str):
        raise InvalidSmilesError(smiles, "unparseable", f"a {type(smiles).__name__}, not text")
    text = smiles.strip()
    if not text:
        raise InvalidSmilesError(smiles, "empty")
    if len(text) > limits.max_chars:
        raise InvalidSmilesError(
            smiles, "too_large", f"{len(text):,} characters (limit {limits.max_chars:,})"
        )
    for pos, ch in enumerate(text):
        if ch not in SMILES_ALPHABET:
            what = "whitespace" if ch.isspace() else f"character {ch!r}"
            raise InvalidSmilesError(smiles, "bad_character", f"{what} at position {pos + 1}")
    atoms = len(_ATOM_TOKEN.findall(text))
    if atoms > limits.max_atoms:
        raise InvalidSmilesError(
            smiles, "too_large", f"{atoms:,} atoms (limit {limits.max_atoms:,})"
        )
    return text


def mol_from_smiles(smiles: Any, limits: SmilesLimits = DEFAULT_LIMITS) -> Any:
    """Parse ``smiles`` into an RDKit ``Mol``; raise ``InvalidSmilesError`` on any problem:
    what :func:`check_smiles_text` refuses, and strings RDKit cannot parse (or parses to no
    atoms: RDKit returns an empty molecule for some inputs)."""
    text = check_smiles_text(smiles, limits)
    chem = _rdkit_quiet()
    mol = chem.MolFromSmiles(text)
    if mol is None or mol.GetNumAtoms() == 0:
        raise InvalidSmilesError(smiles, "unparseable")
    return mol


def canonical_smiles(mol: Any, *, isomeric: bool = False) -> str:
    """RDKit canonical SMILES; non-isomeric by default, as LLaMo uses it."""
    chem = _rdkit_quiet()
    return chem.MolToSmiles(mol, isomericSmiles=isomeric, canonical=True)


def parse_smiles(smiles: Any, limits: SmilesLimits = DEFAULT_LIMITS) -> ParsedMolecule:
    """Validate ``smiles`` and compute both canonical forms."""
    mol = mol_from_smiles(smiles, limits)
    return ParsedMolecule(
        input_smiles=smiles.strip(),
        canonical_smiles=canonical_smiles(mol, isomeric=False),
        isomeric_smiles=canonical_smiles(mol, isomeric=True),
    )


def prompt_smiles(molecule: ParsedMolecule, max_chars: int = PROMPT_SMILES_MAX_CHARS) -> str:
    """The SMILES text LLaMo puts in the prompt: canonical, non-isomeric, cut to ``max_chars``."""
    return molecule.canonical_smiles[:max_chars]
