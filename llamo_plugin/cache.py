"""A persistent answer cache: SQLite in WAL mode, safe under concurrent writers.

Keys are sha256 digests of (model checksum, task, instruction, canonical isomeric SMILES,
decoding settings), so a different model, wording or decoding never reads a stale answer.
Each batch of answers is written in one transaction: an interrupted run keeps every batch it
finished and nothing half-written. Several processes (KNIME nodes, Ray workers, CLI runs) may
share one file; writers wait for each other (``busy_timeout``) instead of failing.

A damaged cache file (truncated, overwritten, a bad page met mid-run) is only a lost cache:
it is moved aside (kept for inspection, ``answers.sqlite.corrupt-<time>``) with a warning and
the run continues with a fresh one, instead of every later run failing on the default file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from llamo_plugin.config import DecodeConfig
from llamo_plugin.records import Generation

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_CHUNK = 500  # SQLite host-parameter limit is 999 on old builds


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


def cache_dir() -> Path:
    """The project's cache folder: ``$LLAMO_CACHE_DIR``, else ``~/.cache/llamo-plugin``
    (answers, model verification stamps)."""
    root = os.environ.get("LLAMO_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "llamo-plugin"


def default_cache_path() -> Path:
    """``answers.sqlite`` in :func:`cache_dir` (``~/.cache/llamo-plugin/answers.sqlite``)."""
    return cache_dir() / "answers.sqlite"


def is_corruption(exc: BaseException) -> bool:
    """Whether an sqlite3 error means a damaged file (not a busy or locked database)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    name = getattr(exc, "sqlite_errorname", "")
    if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        return True
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


class AnswerCache:
    """Key -> :class:`~llamo_plugin.records.Generation` (text and stop reason) store in one
    SQLite file."""

    def __init__(self, path: str | Path, timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        #: where a damaged file was moved this session (None: none was)
        self.quarantined: Path | None = None
        # One connection, usable from any thread but by one at a time: a Ray actor or a
        # server builds the pipeline in one thread and answers in another.
        self._lock = threading.RLock()
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise
            self._recover(exc)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS answers ("
                " key TEXT PRIMARY KEY, text TEXT NOT NULL, stop_reason TEXT NOT NULL,"
                " created REAL NOT NULL)"
            )
            conn.execute("SELECT key FROM answers LIMIT 1").fetchall()
        except BaseException:
            conn.close()
            raise
        return conn

    def _recover(self, exc: BaseException) -> None:
        """Move the damaged file (and its WAL/SHM companions) aside and open a fresh one."""
        with contextlib.suppress(Exception):
            self._conn.close()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                src.replace(Path(f"{aside}{suffix}"))
        self.quarantined = aside
        logger.warning(
            "answer cache %s is damaged (%s): moved to %s; continuing with a fresh cache",
            self.path,
            str(exc).splitlines()[0][:200],
            aside.name,
        )
        self._conn = self._open()

    def get_many(self, keys: Iterable[str]) -> dict[str, Generation]:
        """The stored answers among ``keys`` (none, if the file turns out damaged: it is
        replaced by a fresh one)."""
        keys = list(dict.fromkeys(keys))
        with self._lock:
            try:
                return self._get_many(keys)
            except sqlite3.DatabaseError as exc:
                if not is_corruption(exc):
                    raise
                self._recover(exc)
                return {}

    def _get_many(self, keys: list[str]) -> dict[str, Generation]:
        found: dict[str, Generation] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT key, text, stop_reason FROM answers WHERE key IN ({marks})", chunk
            )
            for key, text, stop in rows:
                found[key] = Generation(text, (), stop)  # token ids are not stored
        return found

    def put_many(self, items: Mapping[str, Generation]) -> None:
        """Store ``items`` in one transaction (all or nothing); into a fresh file if this one
        turns out damaged."""
        if not items:
            return
        with self._lock:
            try:
                self._put_many(items)
            except sqlite3.DatabaseError as exc:
                if not is_corruption(exc):
                    raise
                self._recover(exc)
                self._put_many(items)

    def _put_many(self, items: Mapping[str, Generation]) -> None:
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
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
