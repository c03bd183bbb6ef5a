"""ServeConfig: typed, frozen, unknown keys rejected; loopback detection."""

from __future__ import annotations

import pytest

from llamo_plugin.errors import ConfigError
from llamo_plugin.serve.config import ServeConfig, is_loopback


def test_unknown_keys_and_bad_values_are_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        ServeConfig.from_dict({"max_row": 10})
    with pytest.raises(ConfigError, match="max_rows must be >= 1"):
        ServeConfig(max_rows=0)
    with pytest.raises(ConfigError, match="port"):
        ServeConfig(port=70_000)
    with pytest.raises(ConfigError, match="expected int"):
        ServeConfig.from_dict({"max_atoms": "many"})
    cfg = ServeConfig.from_dict({"max_smiles_chars": 200, "max_atoms": 30})
    assert cfg.limits.max_chars == 200 and cfg.limits.max_atoms == 30
    with pytest.raises(AttributeError):
        cfg.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("example.org", False),
    ],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    assert ServeConfig(host=host).loopback is loopback
