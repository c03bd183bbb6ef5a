"""Applicability domain: is a molecule like the ones the model was trained on?

A coarse, explainable check (elements, heavy-atom count, formal charges, radicals, wildcard
atoms) against the model's :class:`~llamo_plugin.config.DomainConfig`. An answer for a molecule
outside is extrapolation; users see that in a column instead of trusting it blindly.

>>> from llamo_plugin.config import DomainConfig
>>> domain_status("CCO", DomainConfig())
'in_domain'
>>> domain_status("[CH3]", DomainConfig())
'outside: radical'
"""

from __future__ import annotations

from typing import Any

from llamo_plugin.config import DomainConfig

IN_DOMAIN = "in_domain"


def domain_reasons(mol: Any, domain: DomainConfig) -> list[str]:
    """Why the RDKit molecule ``mol`` lies outside ``domain`` (empty: inside)."""
    reasons: list[str] = []
    allowed = set(domain.elements)
    symbols = sorted({a.GetSymbol() for a in mol.GetAtoms() if a.GetAtomicNum() > 0})
    strange = [s for s in symbols if s not in allowed]
    if strange:
        reasons.append(f"element {', '.join(strange)}")
    if any(a.GetAtomicNum() == 0 for a in mol.GetAtoms()):
        reasons.append("wildcard atom")
    heavy = mol.GetNumHeavyAtoms()
    if heavy > domain.max_heavy_atoms:
        reasons.append(f"{heavy} heavy atoms (trained on <= {domain.max_heavy_atoms})")
    charges = [a.GetFormalCharge() for a in mol.GetAtoms()]
    worst = max(charges, key=abs, default=0)
    if abs(worst) > domain.max_abs_formal_charge:
        reasons.append(f"formal charge {worst:+d} on an atom")
    if not domain.allow_radicals and any(a.GetNumRadicalElectrons() for a in mol.GetAtoms()):
        reasons.append("radical")
    return reasons


def domain_status(smiles: str, domain: DomainConfig) -> str | None:
    """``in_domain``, ``outside: <reasons>``, or None for a SMILES that does not parse."""
    from llamo_plugin.chem.smiles import mol_from_smiles
    from llamo_plugin.errors import InvalidSmilesError

    try:
        mol = mol_from_smiles(smiles)
    except InvalidSmilesError:
        return None
    reasons = domain_reasons(mol, domain)
    return IN_DOMAIN if not reasons else "outside: " + "; ".join(reasons)
