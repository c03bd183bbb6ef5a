"""Structure-grounded pretraining corpus: ChEBI-style sentences derived from RDKit.

For QM9 and ChEBI-20 validation molecules, :func:`describe` writes a short caption in the
structure of ChEBI's definitions ("The molecule is a ... that is ... It is a ..., a ... and
a .... It is a conjugate acid of a ...") from facts RDKit establishes:

- classes from substructure rules (:data:`CLASS_RULES`, ChEBI class names: carboxylic acids,
  primary/secondary/tertiary alcohols, aldehydes, ketones, esters and lactones, amides and
  lactams, ethers, amines, nitriles, phenols, benzenes and heteroarenes, saturated
  heterocycles, alkenes/alkynes, organohalogen compounds, ions, zwitterions, salts, ring
  systems);
- conjugate acid/base relations of monocarboxylic acids and their anions, named from the
  verified IUPAC name when one is known (``propanoic acid`` <-> ``propanoate``);
- net charge and ring sizes.

Only role-free statements are made: nothing about biological roles, sources or uses.
Records use the description task's instructions (``task="description"``,
``source="rdkit-facts/<pool>"``).
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamo_plugin.tasks import DESCRIPTION, Task
from llamo_plugin.train.context import BuildContext, make_context, pick
from llamo_plugin.train.groups import count_matches, has_match
from llamo_plugin.train.records import BuildStats, InstructionRecord, write_jsonl
from llamo_plugin.train.splits import PoolMolecule

logger = logging.getLogger(__name__)

FACTS_SOURCE_PREFIX = "rdkit-facts/"
#: The description instructions that do not ask for a role (facts never state roles).
FACTS_INSTRUCTIONS: tuple[str, ...] = tuple(
    i for i in DESCRIPTION.instructions if "role" not in i.lower()
)

_ACYL = "[CX3;$([CX3][#6]),$([CX3H1])]"
_ACYL_RING = "[CX3;R;$([CX3][#6]),$([CX3H1])]"

#: class name -> SMARTS; a class holds when the pattern matches.
CLASS_RULES: tuple[tuple[str, str], ...] = (
    ("alpha-amino acid", "[NX3;H2,H1;!$(N[#6]=[O,S,N])][CX4][CX3](=O)[OX2H1]"),
    ("alpha-amino-acid zwitterion", "[NX4+;H3,H2][CX4][CX3](=O)[OX1-]"),
    ("member of benzoic acids", "[OX2H1][CX3](=O)c1ccccc1"),
    ("alpha,beta-unsaturated monocarboxylic acid", "[CX3]=[CX3][CX3](=O)[OX2H1]"),
    ("acetate ester", "[CH3][CX3](=O)[OX2H0][#6]"),
    ("methyl ester", "[#6][CX3](=O)[OX2H0][CH3]"),
    ("ethyl ester", "[#6][CX3](=O)[OX2H0][CH2][CH3]"),
    ("formate ester", "[CX3H1](=O)[OX2H0][#6]"),
    ("member of acetamides", "[CH3][CX3](=O)[NX3]"),
    ("member of formamides", "[CX3H1](=O)[NX3]"),
    ("primary carboxamide", f"{_ACYL}(=O)[NX3H2]"),
    ("secondary carboxamide", f"{_ACYL}(=O)[NX3H1][#6]"),
    ("tertiary carboxamide", f"{_ACYL}(=O)[NX3H0]([#6])[#6]"),
    ("member of ureas", "[NX3][CX3](=O)[NX3]"),
    ("carbamate ester", "[NX3][CX3](=O)[OX2][#6]"),
    ("carboxamidine", f"[NX3]{_ACYL}=[NX2;!$(N[#8])]"),
    ("member of guanidines", "[NX3][CX3](=[NX2])[NX3]"),
    ("aldehyde", "[$([CX3H1](=O)[#6]),$([CX3H2]=O)]"),
    ("member of benzaldehydes", "[CX3H1](=O)c1ccccc1"),
    ("ketone", "[#6][CX3](=O)[#6]"),
    ("cyclic ketone", "[#6][CX3;R](=O)[#6]"),
    ("aromatic ketone", "[#6][CX3](=O)c"),
    ("methyl ketone", "[CH3][CX3](=O)[#6]"),
    ("enone", "[CX3]=[CX3][CX3](=O)[#6]"),
    ("enol", "[OX2H][CX3]=[CX3]"),
    ("acetal", "[CX4]([OX2][#6;!$([#6]=O)])[OX2][#6;!$([#6]=O)]"),
    ("member of phenols", "[OX2H]c1ccccc1"),
    ("epoxide", "[#6]1[OX2][#6]1"),
    ("nitrile", "[NX1]#[CX2]"),
    ("C-nitro compound", "[#6][$([NX3](=O)=O),$([NX3+](=O)[O-])]"),
    ("oxime", "[CX3]=[NX2][OX2H]"),
    ("imine", "[CX3;!$(C(=N)[#7,#8,#16])]=[NX2;!$(N[#7,#8])]"),
    ("thiol", "[#6][SX2H]"),
    ("organic sulfide", "[#6][SX2H0][#6]"),
    ("sulfonamide", "[SX4](=O)(=O)[NX3]"),
    ("primary arylamine", "[NX3H2;!$(N[!#6])][c;$(c1ccccc1)]"),  # aryl: benzenoid only
    ("quaternary ammonium ion", "[NX4+H0]([#6])([#6])([#6])[#6]"),
    ("ammonium ion derivative", "[NX4+;H1,H2,H3;!$(N~[O-])][#6]"),
    ("olefinic compound", "[CX3]=[CX3]"),
    ("acetylenic compound", "[CX2]#[CX2]"),
    ("organofluorine compound", "[#6]F"),
    ("organochlorine compound", "[#6]Cl"),
    ("organobromine compound", "[#6]Br"),
    ("organoiodine compound", "[#6]I"),
    # aromatic rings, not fused (ring atoms in one ring only)
    ("member of benzenes", "[c;R1]1[c;R1][c;R1][c;R1][c;R1][c;R1]1"),
    ("member of pyridines", "[n;R1]1[c;R1][c;R1][c;R1][c;R1][c;R1]1"),
    ("member of pyrimidines", "[n;R1]1[c;R1][n;R1][c;R1][c;R1][c;R1]1"),
    ("member of pyrazines", "[n;R1]1[c;R1][c;R1][n;R1][c;R1][c;R1]1"),
    ("member of pyridazines", "[n;R1]1[n;R1][c;R1][c;R1][c;R1][c;R1]1"),
    ("member of pyrroles", "[n;R1]1[c;R1][c;R1][c;R1][c;R1]1"),
    ("member of furans", "[o;R1]1[c;R1][c;R1][c;R1][c;R1]1"),
    ("member of thiophenes", "[s;R1]1[c;R1][c;R1][c;R1][c;R1]1"),
    ("member of imidazoles", "[n;R1]1[c;R1][n;R1][c;R1][c;R1]1"),
    ("member of pyrazoles", "[n;R1]1[n;R1][c;R1][c;R1][c;R1]1"),
    ("member of 1,3-oxazoles", "[o;R1]1[c;R1][n;R1][c;R1][c;R1]1"),
    ("member of isoxazoles", "[o;R1]1[n;R1][c;R1][c;R1][c;R1]1"),
    ("member of 1,3-thiazoles", "[s;R1]1[c;R1][n;R1][c;R1][c;R1]1"),
    ("member of 1,2,4-oxadiazoles", "[o;R1]1[n;R1][c;R1][n;R1][c;R1]1"),
    ("member of 1,3,4-oxadiazoles", "[o;R1]1[c;R1][n;R1][n;R1][c;R1]1"),
    (
        "member of triazoles",
        "[$([n;R1]1[n;R1][n;R1][c;R1][c;R1]1),$([n;R1]1[n;R1][c;R1][n;R1][c;R1]1)]",
    ),
    ("member of tetrazoles", "[n;R1]1[n;R1][n;R1][n;R1][c;R1]1"),
    # fused aromatic systems
    ("member of indoles", "c1ccc2c(c1)ccn2"),
    ("member of benzofurans", "c1ccc2c(c1)cco2"),
    ("member of benzimidazoles", "c1ccc2c(c1)ncn2"),
    ("member of quinolines", "c1ccc2c(c1)cccn2"),
    ("member of naphthalenes", "c1ccc2ccccc2c1"),
    ("member of purines", "c1ncc2ncnc2n1"),
    # saturated heterocycles (all ring atoms sp3, ring atoms in one ring only)
    ("member of oxetanes", "[OX2;R1]1[CX4;R1][CX4;R1][CX4;R1]1"),
    ("member of oxolanes", "[OX2;R1]1[CX4;R1][CX4;R1][CX4;R1][CX4;R1]1"),
    ("member of oxanes", "[OX2;R1]1[CX4;R1][CX4;R1][CX4;R1][CX4;R1][CX4;R1]1"),
    ("member of 1,3-dioxolanes", "[OX2;R1]1[CX4;R1][OX2;R1][CX4;R1][CX4;R1]1"),
    ("member of aziridines", "[NX3;R1]1[CX4;R1][CX4;R1]1"),
    ("member of azetidines", "[NX3;R1]1[CX4;R1][CX4;R1][CX4;R1]1"),
    ("member of pyrrolidines", "[NX3;R1]1[CX4;R1][CX4;R1][CX4;R1][CX4;R1]1"),
    ("member of piperidines", "[NX3;R1]1[CX4;R1][CX4;R1][CX4;R1][CX4;R1][CX4;R1]1"),
    ("member of morpholines", "[NX3;R1]1[CX4;R1][CX4;R1][OX2;R1][CX4;R1][CX4;R1]1"),
    ("member of piperazines", "[NX3;R1]1[CX4;R1][CX4;R1][NX3;R1][CX4;R1][CX4;R1]1"),
)

_CARBOXYLIC_ACID = f"{_ACYL}(=O)[OX2H1]"
_CARBOXYLATE = f"{_ACYL}(=O)[OX1-]"
_ESTER = f"{_ACYL}(=O)[OX2H0][#6]"
_LACTONE = f"{_ACYL_RING}(=O)@[OX2H0;R]"
_AMIDE = f"{_ACYL}(=O)[NX3]"
_LACTAM = f"{_ACYL_RING}(=O)@[NX3;R]"
_HYDROXY = "[OX2H][#6;!$([#6]=[O,S,N])]"
_ALCOHOL = "[OX2H][CX4]"
_ETHER_O = "[OX2H0;$(O([#6;!$([#6]=[O,S,N])])[#6;!$([#6]=[O,S,N])])]"
_AMINE_N = "[NX3;!$(N[#6]=[#7,#8,#16]);!$(N[!#6])]"
_KETONE_OR_ALDEHYDE = "[$([#6][CX3](=O)[#6]),$([CX3H1](=O)[#6]),$([CX3H2]=O)]"

_RING_PREFIX = {1: "mono", 2: "bi", 3: "tri", 4: "tetra", 5: "penta"}
_LACTONE_PREFIX = {4: "beta", 5: "gamma", 6: "delta", 7: "epsilon"}
_NUMBER_WORDS = {
    1: "one",
    2: "two",
    3: "three",
    4: "four",
    5: "five",
    6: "six",
    7: "seven",
    8: "eight",
    9: "nine",
    10: "ten",
    11: "eleven",
    12: "twelve",
}

#: generic class -> more specific classes that make it redundant (as ChEBI lists the most
#: specific parents only).
SUBSUMED: dict[str, tuple[str, ...]] = {
    "carboxylic ester": (
        "acetate ester",
        "methyl ester",
        "ethyl ester",
        "formate ester",
        "lactone",
        "beta-lactone",
        "gamma-lactone",
        "delta-lactone",
        "epsilon-lactone",
    ),
    "lactone": ("beta-lactone", "gamma-lactone", "delta-lactone", "epsilon-lactone"),
    "lactam": ("beta-lactam", "gamma-lactam", "delta-lactam", "epsilon-lactam"),
    "ketone": ("cyclic ketone", "aromatic ketone", "methyl ketone", "enone"),
    "aldehyde": ("member of benzaldehydes",),
    "ether": ("aromatic ether", "cyclic ether", "epoxide"),
    "cyclic ether": (
        "epoxide",
        "member of oxetanes",
        "member of oxolanes",
        "member of oxanes",
        "member of 1,3-dioxolanes",
    ),
    "organic anion": (
        "monocarboxylic acid anion",
        "dicarboxylic acid dianion",
        "tricarboxylic acid trianion",
    ),
    "zwitterion": ("alpha-amino-acid zwitterion",),
    "primary amino compound": ("primary arylamine",),
    "olefinic compound": (
        "alkene",
        "cycloalkene",
        "enone",
        "enol",
        "alpha,beta-unsaturated monocarboxylic acid",
    ),
    "acetylenic compound": ("alkyne",),
    "hydrocarbon": ("alkane", "alkene", "alkyne", "cycloalkane", "cycloalkene"),
}

#: Order in which a headline class is chosen for the first sentence.
HEAD_PRIORITY: tuple[str, ...] = (
    "alpha-amino-acid zwitterion",
    "zwitterion",
    "tricarboxylic acid trianion",
    "dicarboxylic acid dianion",
    "monocarboxylic acid anion",
    "organic anion",
    "quaternary ammonium ion",
    "ammonium ion derivative",
    "organic cation",
    "hydrochloride",
    "organic sodium salt",
    "organic potassium salt",
    "alpha-amino acid",
    "polycarboxylic acid",
    "tricarboxylic acid",
    "dicarboxylic acid",
    "member of benzoic acids",
    "hydroxy monocarboxylic acid",
    "oxo monocarboxylic acid",
    "alpha,beta-unsaturated monocarboxylic acid",
    "monocarboxylic acid",
    "beta-lactam",
    "gamma-lactam",
    "delta-lactam",
    "epsilon-lactam",
    "lactam",
    "beta-lactone",
    "gamma-lactone",
    "delta-lactone",
    "epsilon-lactone",
    "lactone",
    "acetate ester",
    "methyl ester",
    "ethyl ester",
    "formate ester",
    "carboxylic ester",
    "member of ureas",
    "carbamate ester",
    "member of guanidines",
    "carboxamidine",
    "member of acetamides",
    "member of formamides",
    "primary carboxamide",
    "secondary carboxamide",
    "tertiary carboxamide",
    "monocarboxylic acid amide",
    "member of benzaldehydes",
    "aldehyde",
    "enone",
    "aromatic ketone",
    "cyclic ketone",
    "methyl ketone",
    "ketone",
    "nitrile",
    "C-nitro compound",
    "oxime",
    "sulfonamide",
    "member of phenols",
    "polyol",
    "tetrol",
    "triol",
    "diol",
    "tertiary alcohol",
    "secondary alcohol",
    "primary alcohol",
    "enol",
    "acetal",
    "primary arylamine",
    "tertiary amino compound",
    "secondary amino compound",
    "primary amino compound",
    "imine",
    "thiol",
    "organic sulfide",
    "epoxide",
)


def article(phrase: str) -> str:
    """``a`` or ``an`` before ``phrase`` (ChEBI writes "an 8-hydroxy...", "a 2-oxo...")."""
    text = phrase.lstrip("([{")
    if not text:
        return "a"
    if text[0].isdigit():
        digits = ""
        for ch in text:
            if not ch.isdigit():
                break
            digits += ch
        return "an" if digits in ("8", "11", "18") or digits.startswith("8") else "a"
    first = text[0]
    if len(text) > 1 and text[1] in "-,'" and first.isupper():
        return "an" if first in "AEFHILMNORSX" else "a"  # letter names: "an N-acyl"
    lower = text.lower()
    if lower.startswith(("uni", "eu", "one", "ur")):
        return "a"
    return "an" if lower[0] in "aeiou" else "a"


def with_article(phrase: str) -> str:
    """``phrase`` with its indefinite article."""
    return f"{article(phrase)} {phrase}"


def _join(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _rdkit() -> Any:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    return Chem


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class MoleculeFacts:
    """What RDKit establishes about one molecule."""

    classes: tuple[str, ...]
    net_charge: int
    ring_sizes: tuple[int, ...]
    rings_exact: bool
    n_carboxylic_acid: int
    n_carboxylate: int
    single_fragment: bool
    charged_atoms: int  # charges not paired on neighbours, outside carboxylate oxygens


def _ring_classes(mol: Any) -> list[str]:
    chem = _rdkit()
    from rdkit.Chem import rdMolDescriptors

    rings = [set(r) for r in chem.GetSymmSSSR(mol)]
    if not rings:
        return []
    out = []
    if any(len(r) >= 12 for r in rings):
        out.append("macrocycle")
    if rdMolDescriptors.CalcNumBridgeheadAtoms(mol):
        out.append("bridged compound")
    if rdMolDescriptors.CalcNumSpiroAtoms(mol):
        out.append("spiro compound")
    # ring systems: rings sharing an atom
    systems: list[set[int]] = []
    for ring in rings:
        merged = [s for s in systems if s & ring]
        new = set(ring).union(*merged)
        systems = [s for s in systems if not (s & ring)] + [new]
    if len(systems) == 1:
        n = len(chem.GetSSSR(mol))  # cyclomatic number of the one system
        hetero = any(mol.GetAtomWithIdx(i).GetAtomicNum() != 6 for i in systems[0])
        prefix = _RING_PREFIX.get(n)
        if hetero:
            out.append(
                f"organic hetero{prefix}cyclic compound"
                if prefix
                else "organic heteropolycyclic compound"
            )
        else:
            out.append(f"carbo{prefix}cyclic compound" if prefix else "carbopolycyclic compound")
    return out


def _cyclic_acyl(mol: Any, smarts: str, stem: str) -> list[str]:
    """One class per lactone/lactam bond, named by the size of its ring (``gamma-lactone``)."""
    ring_info = mol.GetRingInfo()
    names = []
    for c_idx, _o_idx, x_idx in mol.GetSubstructMatches(_compiled(smarts)):
        sizes = [len(r) for r in ring_info.AtomRings() if c_idx in r and x_idx in r]
        prefix = _LACTONE_PREFIX.get(min(sizes)) if sizes else None
        names.append(f"{prefix}-{stem}" if prefix else stem)
    return names


def _ester_amide_classes(mol: Any) -> list[str]:
    out = []
    lactones = _cyclic_acyl(mol, _LACTONE, "lactone")
    out.extend(lactones)
    if count_matches(mol, _ESTER) > len(lactones):
        out.append("carboxylic ester")
    lactams = _cyclic_acyl(mol, _LACTAM, "lactam")
    out.extend(lactams)
    if count_matches(mol, _AMIDE) == 1 and not lactams:
        out.append("monocarboxylic acid amide")
    return out


def _alcohol_classes(mol: Any) -> list[str]:
    out = []
    for o_idx, c_idx in mol.GetSubstructMatches(_compiled(_ALCOHOL)):
        carbon = mol.GetAtomWithIdx(c_idx)
        others = [a for a in carbon.GetNeighbors() if a.GetIdx() != o_idx]
        if any(a.GetAtomicNum() != 6 for a in others):
            continue  # hemiacetal / hemiaminal carbon: not a plain alcohol
        h = carbon.GetTotalNumHs()
        out.append(
            "primary alcohol" if h >= 2 else "secondary alcohol" if h == 1 else "tertiary alcohol"
        )
    n_oh = count_matches(mol, _HYDROXY)
    if n_oh >= 2:
        out.append({2: "diol", 3: "triol", 4: "tetrol"}.get(n_oh, "polyol"))
    return out


def _ether_classes(mol: Any) -> list[str]:
    out = []
    for (o_idx,) in mol.GetSubstructMatches(_compiled(_ETHER_O)):
        atom = mol.GetAtomWithIdx(o_idx)
        if any(n.GetIsAromatic() for n in atom.GetNeighbors()):
            out.append("aromatic ether")
        if atom.IsInRing():
            out.append("cyclic ether")
        if not atom.IsInRing() and not any(n.GetIsAromatic() for n in atom.GetNeighbors()):
            out.append("ether")
    return out


def _amine_classes(mol: Any) -> list[str]:
    out = []
    for (n_idx,) in mol.GetSubstructMatches(_compiled(_AMINE_N)):
        atom = mol.GetAtomWithIdx(n_idx)
        carbons = sum(1 for a in atom.GetNeighbors() if a.GetAtomicNum() == 6)
        if carbons == 0:
            continue
        out.append(
            {1: "primary amino compound", 2: "secondary amino compound"}.get(
                carbons, "tertiary amino compound"
            )
        )
    return out


def _hydrocarbon_classes(mol: Any) -> list[str]:
    if any(a.GetAtomicNum() != 6 for a in mol.GetAtoms()) or _rdkit().GetFormalCharge(mol):
        return []
    out = ["hydrocarbon"]
    n_double = count_matches(mol, "[CX3]=[CX3]")
    n_triple = count_matches(mol, "[CX2]#[CX2]")
    n_rings = len(_rdkit().GetSSSR(mol))
    aromatic = any(a.GetIsAromatic() for a in mol.GetAtoms())
    if n_rings == 0:
        if not n_double and not n_triple:
            out.append("alkane")
        elif n_double == 1 and not n_triple:
            out.append("alkene")
        elif n_triple == 1 and not n_double:
            out.append("alkyne")
    elif n_rings == 1 and not aromatic and not n_triple:
        if not n_double:
            out.append("cycloalkane")
        elif n_double == 1 and has_match(mol, "[CX3;R]=[CX3;R]"):
            out.append("cycloalkene")
    return out


def _separated_charges(mol: Any, exclude: set[int]) -> list[Any]:
    """Charged atoms (outside ``exclude``) without an oppositely charged neighbour.

    Charges paired on neighbouring atoms (nitro groups, N-oxides, azides) cancel locally
    and do not make a molecule an ion or a zwitterion.
    """
    out = []
    for atom in mol.GetAtoms():
        q = atom.GetFormalCharge()
        if not q or atom.GetIdx() in exclude:
            continue
        if not any(n.GetFormalCharge() * q < 0 for n in atom.GetNeighbors()):
            out.append(atom)
    return out


def _carboxylate_oxygens(mol: Any) -> set[int]:
    return {o for _c, _o, o in mol.GetSubstructMatches(_compiled(_CARBOXYLATE))}


def _charge_classes(mol: Any, n_acid: int, n_anion: int) -> list[str]:
    net = _rdkit().GetFormalCharge(mol)
    separated = _separated_charges(mol, set())
    others = _separated_charges(mol, _carboxylate_oxygens(mol))
    out: list[str] = []
    if net < 0:
        out.append("organic anion")
        if n_anion and -net == n_anion and not n_acid and not others:
            out.append(
                {
                    1: "monocarboxylic acid anion",
                    2: "dicarboxylic acid dianion",
                    3: "tricarboxylic acid trianion",
                }.get(n_anion, "organic anion")
            )
    elif net > 0:
        out.append("organic cation")
    elif any(a.GetFormalCharge() > 0 for a in separated) and any(
        a.GetFormalCharge() < 0 for a in separated
    ):
        out.append("zwitterion")
    return out


_SALT_COUNTERPARTS = {
    "Cl": "hydrochloride",
    "[Na+]": "organic sodium salt",
    "[K+]": "organic potassium salt",
}


def facts_of(mol: Any) -> MoleculeFacts:
    """Classes, charge and rings of an RDKit molecule."""
    chem = _rdkit()
    fragments = chem.GetMolFrags(mol, asMols=True)
    classes: list[str] = []
    if len(fragments) > 1:
        frag_smiles = [chem.MolToSmiles(f) for f in fragments]
        organic = [f for f in fragments if any(a.GetAtomicNum() == 6 for a in f.GetAtoms())]
        for smi, cls in _SALT_COUNTERPARTS.items():
            if smi in frag_smiles and organic:
                classes.append(cls)
    n_acid = count_matches(mol, _CARBOXYLIC_ACID)
    n_anion = count_matches(mol, _CARBOXYLATE)
    if n_acid:
        classes.append(
            {1: "monocarboxylic acid", 2: "dicarboxylic acid", 3: "tricarboxylic acid"}.get(
                n_acid, "polycarboxylic acid"
            )
        )
        if n_acid == 1 and count_matches(mol, _HYDROXY) > 0:
            classes.append("hydroxy monocarboxylic acid")
        if n_acid == 1 and has_match(mol, _KETONE_OR_ALDEHYDE):
            classes.append("oxo monocarboxylic acid")
    for name, smarts in CLASS_RULES:
        if has_match(mol, smarts):
            classes.append(name)
    classes += _ester_amide_classes(mol)
    classes += _alcohol_classes(mol)
    classes += _ether_classes(mol)
    classes += _amine_classes(mol)
    classes += _hydrocarbon_classes(mol)
    classes += _ring_classes(mol)
    single = len(fragments) == 1
    net = chem.GetFormalCharge(mol)
    charged = len(_separated_charges(mol, _carboxylate_oxygens(mol)))
    if single:
        classes += _charge_classes(mol, n_acid, n_anion)
    unique = list(dict.fromkeys(classes))
    present = set(unique)
    unique = [c for c in unique if not (present & set(SUBSUMED.get(c, ())))]
    sssr = [len(r) for r in chem.GetSSSR(mol)]
    return MoleculeFacts(
        classes=tuple(unique),
        net_charge=net,
        ring_sizes=tuple(sorted(sssr)),
        rings_exact=len(sssr) == len(chem.GetSymmSSSR(mol)),
        n_carboxylic_acid=n_acid,
        n_carboxylate=n_anion,
        single_fragment=single,
        charged_atoms=charged,
    )


def _compiled(smarts: str) -> Any:
    from llamo_plugin.train.groups import compiled

    return compiled(smarts)


# --------------------------------------------------------------------------- sentences


def conjugate_sentence(facts: MoleculeFacts, name: str | None) -> str | None:
    """ "It is a conjugate acid/base of a ..." for monocarboxylic acids and their anions."""
    plain = facts.single_fragment
    if (
        plain
        and facts.n_carboxylic_acid == 1
        and not facts.n_carboxylate
        and facts.charged_atoms == 0
    ):
        if name and name.endswith("ic acid"):
            base = name[: -len("ic acid")] + "ate"
            return f"It is a conjugate acid of {with_article(base)}."
        return "It is a conjugate acid of a monocarboxylic acid anion."
    if (
        plain
        and facts.n_carboxylate == 1
        and not facts.n_carboxylic_acid
        and facts.net_charge == -1
        and facts.charged_atoms == 0
    ):
        if name and name.endswith("ate"):
            acid = name[: -len("ate")] + "ic acid"
            return f"It is a conjugate base of {with_article(acid)}."
        return "It is a conjugate base of a monocarboxylic acid."
    return None


def ring_sentence(facts: MoleculeFacts) -> str | None:
    """ "It contains a five-membered ring and two six-membered rings." (SSSR)."""
    if not facts.ring_sizes:
        return None
    counts = Counter(facts.ring_sizes)
    items = []
    for size in sorted(counts):
        word = _NUMBER_WORDS.get(size, str(size))
        n = counts[size]
        if not facts.rings_exact:
            single = f"{with_article(word)}-membered ring"
            items.append(f"{word}-membered rings" if n > 1 else single)
        elif n == 1:
            items.append(f"{with_article(word)}-membered ring")
        else:
            items.append(f"{_NUMBER_WORDS.get(n, str(n))} {word}-membered rings")
    return f"It contains {_join(items)}."


def charge_sentence(facts: MoleculeFacts) -> str | None:
    """ "It has a net charge of -1." for ions."""
    if facts.net_charge == 0:
        return None
    return f"It has a net charge of {facts.net_charge:+d}."


def head_class(classes: Iterable[str]) -> str:
    """The class named in the first sentence."""
    present = list(classes)
    for cls in HEAD_PRIORITY:
        if cls in present:
            return cls
    return present[0]


def describe(
    mol: Any, name: str | None = None, rng: random.Random | None = None, max_classes: int = 8
) -> str | None:
    """A ChEBI-style caption of ``mol`` built from RDKit facts, or ``None`` without facts.

    ``name`` (a verified IUPAC name) is used in the first sentence and to name the conjugate
    acid/base; ``rng`` picks the first sentence's wording (first wording without it).
    """
    facts = facts_of(mol)
    if not facts.classes:
        return None
    head = head_class(facts.classes)
    if name:
        templates = (
            f"The molecule is {with_article(head)} that is {name}.",
            f"The molecule is {name}, {with_article(head)}.",
        )
        first = templates[rng.randrange(len(templates))] if rng is not None else templates[0]
    else:
        first = f"The molecule is {with_article(head)}."
    sentences = [first]
    ring = ring_sentence(facts)
    if ring:
        sentences.append(ring)
    others = [c for c in facts.classes if c != head]
    if others:
        listed = sorted([head, *others][:max_classes], key=str.lower)
        sentences.append(f"It is {_join([with_article(c) for c in listed])}.")
    charge = charge_sentence(facts)
    if charge:
        sentences.append(charge)
    conj = conjugate_sentence(facts, name)
    if conj:
        sentences.append(conj)
    return " ".join(sentences)


# --------------------------------------------------------------------------- build


def build(
    data_dir: Path | None = None,
    out_dir: Path = Path("data/build"),
    *,
    seed: int = 0,
    max_molecules: int | None = None,
    names: Mapping[str, str] | None = None,
    context: BuildContext | None = None,
) -> BuildStats:
    """Write ``facts_train.jsonl`` and ``facts_val.jsonl`` to ``out_dir``.

    Args:
        max_molecules: at most this many training molecules per pool (QM9, ChEBI-20).
        names: canonical isomeric SMILES -> verified IUPAC name; default: every name
            already verified (ChEBI-20 name file + the QM9 name cache of the IUPAC builder),
            so the output depends on whether the IUPAC build ran before.
    """
    t0 = time.perf_counter()
    ctx = context or make_context(data_dir)
    if names is None:
        from llamo_plugin.train.build_iupac import verified_names

        names = verified_names(ctx)
    stats = BuildStats(task="facts")
    stats.extra["names_available"] = len(names)
    chem = _rdkit()

    def training() -> Iterable[PoolMolecule]:
        return ctx.iter_qm9_and_chebi(
            seed=seed, salt="facts", skipped=stats.skipped, max_molecules=max_molecules
        )

    def records(molecules: Iterable[PoolMolecule], split: str) -> Iterable[InstructionRecord]:
        rng = random.Random(f"facts:{split}:{seed}")
        for m in molecules:
            instruction = pick(rng, FACTS_INSTRUCTIONS)
            mol = chem.MolFromSmiles(m.smiles)
            text = describe(mol, names.get(m.smiles), rng) if mol is not None else None
            if text is None:
                stats.skipped[f"{split}:no-facts"] += 1
                continue
            stats.molecules[split] += 1
            stats.extra.setdefault("with_name", Counter())[split] += int(m.smiles in names)
            yield InstructionRecord(
                task=Task.DESCRIPTION.value,
                smiles=m.smiles,
                instruction=instruction,
                answer=text,
                source=FACTS_SOURCE_PREFIX + m.source,
                split=split,
            )

    out_dir = Path(out_dir)
    for split, molecules in (("train", training()), ("val", iter(ctx.val_molecules()))):
        path = out_dir / f"facts_{split}.jsonl"
        stats.records[split] = write_jsonl(path, records(molecules, split))
        stats.files[split] = str(path)
    stats.extra["with_name"] = dict(stats.extra.get("with_name", {}))
    stats.wall_s = time.perf_counter() - t0
    logger.info("facts: %s", stats.to_dict())
    return stats
