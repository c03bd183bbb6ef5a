"""The SQLite answer cache: keys, round trip, atomic batches, concurrent writers."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from llamo_plugin.cache import AnswerCache, CachedAnswer, cache_key
from llamo_plugin.config import DecodeConfig


def test_key_depends_on_everything() -> None:
    d = DecodeConfig(max_new_tokens=8)
    base = cache_key("m1", "qa", "Q?", "CCO", d)
    assert base == cache_key("m1", "qa", "Q?", "CCO", DecodeConfig(max_new_tokens=8))
    others = [
        cache_key("m2", "qa", "Q?", "CCO", d),
        cache_key("m1", "iupac", "Q?", "CCO", d),
        cache_key("m1", "qa", "Q2?", "CCO", d),
        cache_key("m1", "qa", "Q?", "OCC", d),
        cache_key("m1", "qa", "Q?", "CCO", DecodeConfig(max_new_tokens=9)),
        cache_key("m1", "qa", "Q?", "CCO", DecodeConfig(max_new_tokens=8, repetition_penalty=1.1)),
    ]
    assert len({base, *others}) == 7


def test_round_trip_and_persistence(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with AnswerCache(path) as cache:
        cache.put_many({"a": CachedAnswer("x", "eos"), "b": CachedAnswer("y", "length")})
        assert cache.get_many(["a", "c"]) == {"a": CachedAnswer("x", "eos")}
    with AnswerCache(path) as cache:  # reopened: still there
        assert len(cache) == 2
        assert cache.get_many(["b"])["b"].stop_reason == "length"


def test_many_keys_beyond_parameter_limit(tmp_path: Path) -> None:
    with AnswerCache(tmp_path / "c.sqlite") as cache:
        cache.put_many({str(i): CachedAnswer(str(i), "eos") for i in range(2500)})
        got = cache.get_many(str(i) for i in range(0, 5000, 2))
        assert len(got) == 1250


def test_failed_batch_writes_nothing(tmp_path: Path) -> None:
    with AnswerCache(tmp_path / "c.sqlite") as cache:

        class Bad(dict):  # type: ignore[type-arg]
            def items(self):  # type: ignore[no-untyped-def]
                yield "ok", CachedAnswer("x", "eos")
                raise RuntimeError("interrupted while writing")

        with pytest.raises(RuntimeError):
            cache.put_many(Bad(x=1))
        assert len(cache) == 0
        cache.put_many({"k": CachedAnswer("v", "eos")})  # still usable
        assert len(cache) == 1


def _writer(path: str, start: int) -> None:
    with AnswerCache(path) as cache:
        for batch in range(20):
            base = start + batch * 50
            cache.put_many({f"k{i}": CachedAnswer(f"v{i}", "eos") for i in range(base, base + 50)})


def test_concurrent_writer_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    AnswerCache(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, n * 1000)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with AnswerCache(path) as cache:
        assert len(cache) == 3000
        assert cache.get_many(["k2999"])["k2999"].text == "v2999"
