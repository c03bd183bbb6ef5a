"""The SQLite answer cache: keys, round trip, atomic batches, concurrent writers."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from llamo_plugin.cache import AnswerCache, cache_key
from llamo_plugin.config import DecodeConfig
from llamo_plugin.records import Generation


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
        cache.put_many({"a": Generation("x", (), "eos"), "b": Generation("y", (), "length")})
        assert cache.get_many(["a", "c"]) == {"a": Generation("x", (), "eos")}
    with AnswerCache(path) as cache:  # reopened: still there
        assert len(cache) == 2
        assert cache.get_many(["b"])["b"].stop_reason == "length"


def test_used_from_other_threads_than_the_one_that_opened_it(tmp_path: Path) -> None:
    """A Ray actor or a server opens the cache in one thread and answers in others."""
    from concurrent.futures import ThreadPoolExecutor

    cache = AnswerCache(tmp_path / "c.sqlite")
    try:

        def work(i: int) -> Generation:
            cache.put_many({f"k{i}": Generation(f"v{i}", (), "eos")})
            return cache.get_many([f"k{i}"])[f"k{i}"]

        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(work, range(40)))
        assert [g.text for g in got] == [f"v{i}" for i in range(40)]
        assert len(cache) == 40
    finally:
        cache.close()


def test_many_keys_beyond_parameter_limit(tmp_path: Path) -> None:
    with AnswerCache(tmp_path / "c.sqlite") as cache:
        cache.put_many({str(i): Generation(str(i), (), "eos") for i in range(2500)})
        got = cache.get_many(str(i) for i in range(0, 5000, 2))
        assert len(got) == 1250


def test_failed_batch_writes_nothing(tmp_path: Path) -> None:
    with AnswerCache(tmp_path / "c.sqlite") as cache:

        class Bad(dict):  # type: ignore[type-arg]
            def items(self):  # type: ignore[no-untyped-def]
                yield "ok", Generation("x", (), "eos")
                raise RuntimeError("interrupted while writing")

        with pytest.raises(RuntimeError):
            cache.put_many(Bad(x=1))
        assert len(cache) == 0
        cache.put_many({"k": Generation("v", (), "eos")})  # still usable
        assert len(cache) == 1


def _writer(path: str, start: int) -> None:
    with AnswerCache(path) as cache:
        for batch in range(20):
            base = start + batch * 50
            cache.put_many(
                {f"k{i}": Generation(f"v{i}", (), "eos") for i in range(base, base + 50)}
            )


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


def _filled(path: Path, n: int = 2000) -> None:
    with AnswerCache(path) as cache:
        cache.put_many({f"k{i}": Generation("x" * 200, (), "eos") for i in range(n)})


@pytest.mark.parametrize("damage", ["junk", "truncated", "empty_header"])
def test_damaged_cache_is_moved_aside_and_replaced(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "answers.sqlite"
    _filled(path)
    data = path.read_bytes()
    if damage == "junk":
        path.write_bytes(b"this is not a database" * 100)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 3])
    else:
        path.write_bytes(b"\0" * 100 + data[100:])
    with AnswerCache(path) as cache:
        found = cache.get_many(["k1", "k2"])
        cache.put_many({"new": Generation("y", (), "eos")})
        assert cache.get_many(["new"]) == {"new": Generation("y", (), "eos")}
        assert cache.quarantined is not None and cache.quarantined.exists()
    assert found == {} or set(found) <= {"k1", "k2"}
    assert "damaged" in caplog.text and "fresh cache" in caplog.text
    assert "Traceback" not in caplog.text
    with AnswerCache(path) as again:  # the next run opens the fresh file without a word
        assert len(again) == 1 and again.quarantined is None


def test_damaged_page_met_mid_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Pages overwritten while a cache is open (the header still intact): the read that meets
    them recovers with a fresh file instead of raising."""
    path = tmp_path / "answers.sqlite"
    _filled(path)
    cache = AnswerCache(path)
    cache._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    with open(path, "r+b") as fh:  # every page but the first one: the b-tree pages
        fh.seek(4096)
        fh.write(b"\xa5" * (size - 4096))
    found = cache.get_many([f"k{i}" for i in range(0, 2000, 7)])
    assert found == {} and cache.quarantined is not None
    cache.put_many({"after": Generation("z", (), "length")})
    assert cache.get_many(["after"])["after"].stop_reason == "length"
    cache.close()
    assert "damaged" in caplog.text


def test_busy_database_is_not_mistaken_for_damage() -> None:
    import sqlite3

    from llamo_plugin.cache import is_corruption

    assert not is_corruption(sqlite3.OperationalError("database is locked"))
    assert is_corruption(sqlite3.DatabaseError("database disk image is malformed"))
    assert is_corruption(sqlite3.DatabaseError("file is not a database"))
