"""Rule-based IUPAC names from ``openclatura`` (the training names and the IUPAC fallback).

``openclatura`` can take very long on a few pathological structures, so each call is limited
to :data:`NAME_TIMEOUT_S` seconds where a timer signal is available (the main thread on
POSIX); elsewhere it runs unbounded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
from collections.abc import Iterator, Sequence

NAME_TIMEOUT_S = 20


class _TimeoutError(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    """Raise :class:`_TimeoutError` after ``seconds`` (only in the main thread; else no limit)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise _TimeoutError

    old = signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _clean_name(name: object) -> str:
    text = str(name or "").strip()
    if not text or any(ch in text for ch in "\t\n\r"):
        return ""
    return text


def generate_name(smiles: str) -> tuple[str, str]:
    """``(name, status)`` from openclatura; status ``""`` when a name was produced."""
    import openclatura

    try:
        with _time_limit(NAME_TIMEOUT_S):
            result = openclatura.name(smiles)
    except _TimeoutError:
        return "", "error"
    except Exception:
        return "", "error"
    name = _clean_name(getattr(result, "name", ""))
    if not getattr(result, "ok", False) or not name:
        return "", "unnamed"
    return name, ""


@dataclasses.dataclass(frozen=True)
class VerifiedName:
    """The IUPAC name a molecule gets: ``name`` (``None`` when there is none), its OPSIN
    round-trip ``status`` and its ``source`` (``model`` or ``openclatura``)."""

    name: str | None
    status: str | None
    source: str | None


def verify_names(
    names: Sequence[str | None],
    smiles: Sequence[str],
    *,
    fallback: bool = True,
    statuses: Sequence[str] | None = None,
) -> list[VerifiedName]:
    """Check the model's ``names`` by an OPSIN round trip to ``smiles`` (or take their
    ``statuses`` when already known); where one does not come back exactly and ``fallback``
    is on, use openclatura's name if *that* round-trips exactly (what the IUPAC node and
    ``llamo annotate`` output). Needs Java (OPSIN)."""
    from llamo_plugin.chem.opsin import roundtrip_status

    checked = (
        list(statuses)
        if statuses is not None
        else roundtrip_status([n or "" for n in names], list(smiles))
    )
    out = [VerifiedName(n, st, "model") for n, st in zip(names, checked, strict=True)]
    if not fallback:
        return out
    todo = [i for i, v in enumerate(out) if v.status != "exact"]
    generated = [(i, generate_name(smiles[i])[0]) for i in todo]
    named = [(i, f) for i, f in generated if f]
    if named:
        statuses = roundtrip_status([f for _, f in named], [smiles[i] for i, _ in named])
        for (i, f), st in zip(named, statuses, strict=True):
            if st == "exact":
                out[i] = VerifiedName(f, st, "openclatura")
    return out
