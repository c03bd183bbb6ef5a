"""Bearer-token authentication: where the token comes from, when it is required, the check.

- The token is read from a file (``--token-file``) or the environment variable
  :data:`TOKEN_ENV`, never from the command line (other users see a process's arguments),
  and never logged or echoed in an error.
- A server bound to anything but a loopback address refuses to start without one; on
  loopback it is optional.
- Requests send ``Authorization: Bearer <token>``; the comparison takes the same time
  whatever the first differing byte (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hmac
import logging
import os
import stat
from pathlib import Path

from llamo_plugin.errors import ConfigError

logger = logging.getLogger(__name__)

#: Environment variable holding the token (when no ``--token-file`` is given).
TOKEN_ENV = "LLAMO_SERVE_TOKEN"
#: Shortest token accepted: a short token can be guessed by trying.
MIN_TOKEN_CHARS = 16


def load_token(token_file: str | Path | None, environ: dict[str, str] | None = None) -> str | None:
    """The configured token (None: none configured). ``ConfigError`` for an unreadable or
    empty file, a token shorter than :data:`MIN_TOKEN_CHARS`, or both sources at once (which
    one would win is a guess the operator should not have to make)."""
    env = os.environ if environ is None else environ
    from_env = env.get(TOKEN_ENV, "")
    if token_file is not None:
        if from_env:
            raise ConfigError(f"both --token-file and ${TOKEN_ENV} are set: use one")
        path = Path(token_file)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"token file {path}: {exc.__class__.__name__}") from None
        if not token:
            raise ConfigError(f"token file {path} is empty")
        _warn_if_readable_by_others(path)
        source = f"file {path}"
    elif from_env:
        token, source = from_env.strip(), f"${TOKEN_ENV}"
    else:
        return None
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise ConfigError(
            f"the token from {source} must be at least {MIN_TOKEN_CHARS} characters without "
            "spaces (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    logger.info("bearer token required (from %s)", source)
    return token


def _warn_if_readable_by_others(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:  # pragma: no cover - it was just read
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        logger.warning("token file %s is readable by other users (chmod 600 it)", path)


def check_bind(host: str, loopback: bool, token: str | None) -> None:
    """``ConfigError`` when the server would listen beyond this machine without a token."""
    if token is None and not loopback:
        raise ConfigError(
            f"--host {host} is reachable from other machines: a bearer token is required "
            f"(--token-file FILE or ${TOKEN_ENV}); bind 127.0.0.1 to serve this machine only"
        )


def token_matches(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (constant time in the
    token's content)."""
    if not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))
