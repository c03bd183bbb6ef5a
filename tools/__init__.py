"""Development tools (not installed with llamo-plugin): run them from a checkout."""
