"""Value types registered by KNIME plugins (stand-in)."""
