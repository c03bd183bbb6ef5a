"""The server's settings: bind address, request limits, micro-batching, timeouts.

The bearer token is deliberately not a field: a config is logged, a token never is
(:mod:`llamo_plugin.serve.auth`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from llamo_plugin.chem.smiles import SmilesLimits
from llamo_plugin.config import FrozenConfig
from llamo_plugin.errors import ConfigError


@dataclass(frozen=True)
class ServeConfig(FrozenConfig):
    """Settings of ``llamo serve``. Unknown keys are rejected (``ServeConfig.from_dict``)."""

    #: bind address; anything but a loopback address needs a bearer token
    host: str = "127.0.0.1"
    #: TCP port (0: any free port, reported in the log)
    port: int = 8000
    #: largest request body; larger requests get 413
    max_body_bytes: int = 8 * 1024 * 1024
    #: most SMILES in one ``/v1/annotate`` request; more get 413
    max_rows: int = 1_000
    #: per-molecule caps: longer or larger SMILES get the row status ``too_large``
    max_smiles_chars: int = 5_000
    max_atoms: int = 1_000
    #: largest ``max_tokens`` a chat completion may ask for
    max_new_tokens: int = 512
    #: micro-batching: most rows in one pipeline run, and how long the first request of a
    #: batch waits for others to join it when the model is idle
    batch_rows: int = 256
    batch_wait_ms: float = 5.0
    #: rows waiting for the model before new requests get 503 (back-pressure)
    max_queued_rows: int = 16_384
    #: requests worked on at once (each holds a thread while it waits for the model)
    max_concurrent_requests: int = 64
    #: a request not answered in this time gets 504 (its queued work is withdrawn)
    request_timeout_s: float = 300.0
    #: on SIGTERM/SIGINT: how long queued and running work may still finish before it is
    #: answered 503; new requests get 503 at once
    shutdown_grace_s: float = 30.0
    #: annotated reference table for retrieval and nearest neighbours ("" = the bundled
    #: ChEBI-20 validation set); chosen at start, never by a client
    reference_table: str = ""

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("serve: host must not be empty")
        if not 0 <= self.port <= 65_535:
            raise ConfigError(f"serve: port must be 0-65535, got {self.port}")
        positive = (
            "max_body_bytes",
            "max_rows",
            "max_smiles_chars",
            "max_atoms",
            "max_new_tokens",
            "batch_rows",
            "max_queued_rows",
            "max_concurrent_requests",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"serve: {name} must be >= 1, got {getattr(self, name)}")
        if self.batch_wait_ms < 0 or self.shutdown_grace_s < 0:
            raise ConfigError("serve: batch_wait_ms and shutdown_grace_s must be >= 0")
        if self.request_timeout_s <= 0:
            raise ConfigError("serve: request_timeout_s must be > 0")

    @property
    def limits(self) -> SmilesLimits:
        """The per-molecule caps as the pipeline takes them."""
        return SmilesLimits(max_chars=self.max_smiles_chars, max_atoms=self.max_atoms)

    @property
    def loopback(self) -> bool:
        """Whether :attr:`host` is a loopback address (only this machine can connect)."""
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """``127.0.0.0/8``, ``::1`` or ``localhost``; any other address or name (``0.0.0.0``,
    ``::``, a LAN address, a host name that may resolve elsewhere) is not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
