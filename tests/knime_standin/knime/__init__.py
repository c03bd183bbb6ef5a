"""Test stand-in of the ``knime`` package (see tests/knime_standin/README.md)."""
