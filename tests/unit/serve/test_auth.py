"""Bearer tokens: from a file or the environment (never both), long enough, required off
loopback, compared in constant time, never logged."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from llamo_plugin.errors import ConfigError
from llamo_plugin.serve.auth import TOKEN_ENV, check_bind, load_token, token_matches

TOKEN = "s3cret-token-0123456789abcdef"


def test_token_from_file_or_environment(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="llamo_plugin")
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    assert load_token(path, environ={}) == TOKEN
    assert load_token(None, environ={TOKEN_ENV: TOKEN}) == TOKEN
    assert load_token(None, environ={}) is None
    assert TOKEN not in caplog.text and str(path) in caplog.text  # where from, never what


def test_bad_token_sources_are_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="use one"):
        load_token(path, environ={TOKEN_ENV: TOKEN})
    with pytest.raises(ConfigError, match="at least 16"):
        load_token(None, environ={TOKEN_ENV: "short"})
    with pytest.raises(ConfigError, match="without spaces"):
        load_token(None, environ={TOKEN_ENV: "a token with spaces inside"})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        load_token(tmp_path / "empty", environ={})
    with pytest.raises(ConfigError, match="FileNotFoundError"):
        load_token(tmp_path / "missing", environ={})
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="llamo_plugin"):
        assert load_token(path, environ={}) == TOKEN
    assert "readable by other users" in caplog.text


def test_token_required_off_loopback() -> None:
    check_bind("127.0.0.1", True, None)
    check_bind("0.0.0.0", False, TOKEN)
    with pytest.raises(ConfigError, match="token is required"):
        check_bind("0.0.0.0", False, None)


def test_token_matches_only_the_bearer_token() -> None:
    assert token_matches(f"Bearer {TOKEN}", TOKEN)
    assert token_matches(f"bearer {TOKEN}", TOKEN)
    for header in (None, "", TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}"):
        assert not token_matches(header, TOKEN)
    assert not token_matches("Bearer ünïcode", TOKEN)
