"""Node tests run against the ``knime.extension`` stand-in under tests/knime_standin."""

from __future__ import annotations

import sys
from pathlib import Path

STANDIN = Path(__file__).resolve().parents[1] / "knime_standin"
if str(STANDIN) not in sys.path:
    sys.path.insert(0, str(STANDIN))
