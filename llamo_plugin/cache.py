"""A persistent answer cache: SQLite in WAL mode, safe under concurrent writers.

Keys are sha256 digests of (model checksum, task, instruction, canonical isomeric SMILES,
decoding settings), so a different model, wording or decoding never reads a stale answer.
Each batch of answers is written in one transaction: an interrupted run keeps every batch it
finished and nothing half-written. Several processes (KNIME nodes, Ray workers, CLI runs) may
share one file; writers wait for each other (``busy_timeout``) instead of failing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from llamo_plugin.config import DecodeConfig

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_CHUNK = 500  # SQLite host-parameter limit is 999 on old builds


@dataclass(frozen=True)
class CachedAnswer:
    """A stored generation."""

    text: str
    stop_reason: str


def cache_key(
    model_checksum: str, task: str, instruction: str, smiles: str, decode: DecodeConfig
) -> str:
    """Hex sha256 of everything the answer depends on."""
    payload = json.dumps(
        [SCHEMA_VERSION, model_checksum, task, instruction, smiles, decode.to_dict()],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def default_cache_path() -> Path:
    """``~/.cache/llamo-plugin/answers.sqlite``."""
    return Path.home() / ".cache" / "llamo-plugin" / "answers.sqlite"


class AnswerCache:
    """Key -> :class:`CachedAnswer` store in one SQLite file."""

    def __init__(self, path: str | Path, timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        self._conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS answers ("
            " key TEXT PRIMARY KEY, text TEXT NOT NULL, stop_reason TEXT NOT NULL,"
            " created REAL NOT NULL)"
        )

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedAnswer]:
        """The stored answers among ``keys``."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, CachedAnswer] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT key, text, stop_reason FROM answers WHERE key IN ({marks})", chunk
            )
            for key, text, stop in rows:
                found[key] = CachedAnswer(text, stop)
        return found

    def put_many(self, items: Mapping[str, CachedAnswer]) -> None:
        """Store ``items`` in one transaction (all or nothing)."""
        if not items:
            return
        now = time.time()
        rows = [(k, v.text, v.stop_reason, now) for k, v in items.items()]
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(
                "INSERT OR REPLACE INTO answers (key, text, stop_reason, created) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
