"""The stand-in reproduces each behaviour fact of the real ``knime.extension`` that it claims
to (standin_checks.py); runs without the fact sheet, so CI always guards them."""

from __future__ import annotations

import pytest

from .standin_checks import STANDIN_CHECKS


@pytest.mark.parametrize("fact_id", sorted(STANDIN_CHECKS))
def test_standin_reproduces(fact_id: str) -> None:
    STANDIN_CHECKS[fact_id]()
