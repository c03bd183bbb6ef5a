"""Stand-in of ``knime.api`` (tests only; see tests/knime_standin/README.md)."""
