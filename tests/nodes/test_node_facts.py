"""The LLaMo nodes obey the behaviour facts of the real ``knime.extension`` they depend on
(node_checks.py): the regression tests of issue 14, run without the fact sheet."""

from __future__ import annotations

import pytest

from .node_checks import NODE_CHECKS


@pytest.mark.parametrize("fact_id", sorted(NODE_CHECKS))
def test_nodes_obey(fact_id: str) -> None:
    NODE_CHECKS[fact_id]()
