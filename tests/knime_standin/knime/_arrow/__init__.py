"""Stand-in of KNIME's Arrow backend (tests only; see tests/knime_standin/README.md)."""
