"""The fixed functional-group SMARTS table behind the QA answers.

The order of :data:`FUNCTIONAL_GROUPS` is the order of the "functional groups present"
answer (a comma-separated list, ``none`` when empty). Definitions are deliberately simple and
documented here, so an answer can always be checked by hand:

- acyl groups (acid, carboxylate, ester, amide) need a carbon or a hydrogen on the carbonyl
  carbon (so ureas and carbamates are separate groups, carbonic acid derivatives are neither);
- ``alcohol`` is a hydroxy group on an sp3 carbon, ``phenol`` one on an aromatic carbon;
- ``ether`` is an aliphatic oxygen between two carbons, neither of them a C=O/C=S/C=N carbon
  (esters are not ethers; aromatic ring oxygens such as furan's are not ethers);
- ``amine`` is a neutral three-connected nitrogen with at least one carbon neighbour and no
  hetero-atom neighbour, not bonded to a C=O/C=S/C=N carbon (amides, amidines are not amines);
- ``alkene`` / ``alkyne`` are non-aromatic C=C / C#C bonds;
- ``halogen`` is F, Cl, Br or I bonded to carbon.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FunctionalGroup:
    """One row of the table.

    Attributes:
        name: the item in the "functional groups present" answer.
        noun: the phrase used in yes/no questions ("a carboxylic acid group").
        smarts: the SMARTS pattern.
    """

    name: str
    noun: str
    smarts: str


_ACYL_C = "[CX3;$([CX3][#6]),$([CX3H1])]"

FUNCTIONAL_GROUPS: tuple[FunctionalGroup, ...] = (
    FunctionalGroup("carboxylic acid", "a carboxylic acid group", f"{_ACYL_C}(=O)[OX2H1]"),
    FunctionalGroup("carboxylate", "a carboxylate group", f"{_ACYL_C}(=O)[OX1-]"),
    FunctionalGroup("ester", "an ester group", f"{_ACYL_C}(=O)[OX2H0][#6]"),
    FunctionalGroup("amide", "an amide group", f"{_ACYL_C}(=O)[NX3]"),
    FunctionalGroup("urea", "a urea group", "[NX3][CX3](=O)[NX3]"),
    FunctionalGroup("carbamate", "a carbamate group", "[NX3][CX3](=O)[OX2][#6]"),
    FunctionalGroup("aldehyde", "an aldehyde group", "[$([CX3H1](=O)[#6]),$([CX3H2]=O)]"),
    FunctionalGroup("ketone", "a ketone group", "[#6][CX3](=O)[#6]"),
    FunctionalGroup("alcohol", "an alcohol (aliphatic hydroxy) group", "[OX2H][CX4]"),
    FunctionalGroup("phenol", "a phenolic hydroxy group", "[OX2H]c"),
    FunctionalGroup(
        "ether",
        "an ether group",
        "[#6;!$([#6]=[O,S,N])][OX2H0][#6;!$([#6]=[O,S,N])]",
    ),
    FunctionalGroup("epoxide", "an epoxide ring", "[#6]1[OX2][#6]1"),
    FunctionalGroup(
        "amine",
        "an amine group",
        "[NX3;!$(N[#6]=[#7,#8,#16]);!$(N[!#6])]([#6])",
    ),
    FunctionalGroup("ammonium", "an ammonium group", "[NX4+]"),
    FunctionalGroup("imine", "an imine group", "[CX3;!$(C(=N)[#7,#8,#16])]=[NX2;!$(N[#7,#8])]"),
    FunctionalGroup("oxime", "an oxime group", "[CX3]=[NX2][OX2H]"),
    FunctionalGroup("nitrile", "a nitrile group", "[NX1]#[CX2]"),
    FunctionalGroup("nitro", "a nitro group", "[$([NX3](=O)=O),$([NX3+](=O)[O-])]"),
    FunctionalGroup("alkene", "a carbon-carbon double bond", "[CX3]=[CX3]"),
    FunctionalGroup("alkyne", "a carbon-carbon triple bond", "[CX2]#[CX2]"),
    FunctionalGroup("halogen", "a halogen atom", "[#6][F,Cl,Br,I]"),
    FunctionalGroup("thiol", "a thiol group", "[#6][SX2H]"),
    FunctionalGroup("thioether", "a thioether (sulfide) group", "[#6][SX2H0][#6]"),
    FunctionalGroup("sulfonic acid", "a sulfonic acid group", "[SX4](=O)(=O)[OX2H,OX1-]"),
    FunctionalGroup("sulfonamide", "a sulfonamide group", "[SX4](=O)(=O)[NX3]"),
    FunctionalGroup(
        "phosphate",
        "a phosphate group",
        "[PX4](=O)([OX2,OX1-])([OX2,OX1-])[OX2,OX1-]",
    ),
)

GROUPS_BY_NAME: dict[str, FunctionalGroup] = {g.name: g for g in FUNCTIONAL_GROUPS}


@functools.cache
def compiled(smarts: str) -> Any:
    """The RDKit query molecule of a SMARTS pattern (compiled once per process)."""
    from rdkit import Chem

    query = Chem.MolFromSmarts(smarts)
    if query is None:
        raise ValueError(f"bad SMARTS {smarts!r}")
    return query


def count_matches(mol: Any, smarts: str) -> int:
    """Number of distinct matches of ``smarts`` in ``mol``."""
    return len(mol.GetSubstructMatches(compiled(smarts), uniquify=True))


def has_match(mol: Any, smarts: str) -> bool:
    """Whether ``smarts`` matches ``mol``."""
    return bool(mol.HasSubstructMatch(compiled(smarts)))


def groups_present(mol: Any) -> list[str]:
    """Names of the table's groups found in ``mol``, in table order."""
    return [g.name for g in FUNCTIONAL_GROUPS if has_match(mol, g.smarts)]
