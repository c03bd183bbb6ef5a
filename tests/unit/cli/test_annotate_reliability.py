"""``llamo annotate`` loses nothing and is never silently wrong: real files, real processes,
real signals (SIGINT, SIGTERM, SIGKILL mid-run)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from llamo_plugin.checkpoint.format import MANIFEST, save_model
from llamo_plugin.cli.main import main
from llamo_plugin.errors import CheckpointError

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def model_dir(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rel") / "model"
    save_model(tiny_model, path)
    return path


def _reference_smiles(n: int) -> list[str]:
    ref = resources.files("llamo_plugin") / "resources/reference/chebi20_validation.tsv"
    with ref.open(encoding="utf-8") as fh:
        return [row["smiles"] for row in csv.DictReader(fh, delimiter="\t")][:n]


def _table(path: Path, n: int) -> Path:
    smiles = _reference_smiles(n)
    pd.DataFrame({"id": range(len(smiles)), "smiles": smiles}).to_csv(path, index=False)
    return path


def _cli(model_dir: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "llamo_plugin.cli.main", "annotate", *args,
        "--model", str(model_dir), "--workers", "1",
    ]  # fmt: skip


def _default_sigint() -> None:
    # A test run started as a background job (`make test &` in a script) inherits SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler in the child.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spawn(cmd: list[str], **kw: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_sigint, **kw,
    )  # fmt: skip


def _wait_for_progress(proc: subprocess.Popen[str], timeout_s: float = 300) -> list[str]:
    """stderr lines up to the first progress line (the run is then mid-way)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if "annotated" in line:
            return lines
    proc.kill()
    pytest.fail(f"no progress line: {''.join(lines)[-2000:]}")


# ----------------------------------------------------------------- input never lost


@pytest.mark.parametrize("alias", ["same", "symlink", "hardlink"])
def test_output_equal_to_input_is_refused_and_input_kept(
    model_dir: Path, tmp_path: Path, alias: str, caplog: pytest.LogCaptureFixture
) -> None:
    src = _table(tmp_path / "t.csv", 3000)
    before = src.read_bytes()
    out = src
    if alias == "symlink":
        out = tmp_path / "link.csv"
        out.symlink_to(src)
    elif alias == "hardlink":
        out = tmp_path / "hard.csv"
        os.link(src, out)
    code = main(["annotate", str(src), "-o", str(out), "--model", str(model_dir), "--no-cache"])
    assert code == 2 and "the output is the input" in caplog.text
    assert src.read_bytes() == before


@pytest.mark.parametrize("kind", ["folder", "parent_is_a_file"])
def test_bad_output_path_fails_before_any_work(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    src = _table(tmp_path / "t.csv", 5)
    if kind == "folder":
        out = tmp_path / "out.csv"
        out.mkdir()
    else:
        (tmp_path / "plain").write_text("x")
        out = tmp_path / "plain" / "out.csv"
    # A model path that does not exist: the output error must come first (no model loaded).
    code = main(["annotate", str(src), "-o", str(out), "--model", str(tmp_path / "nope")])
    assert code == 2
    assert "no such model" not in caplog.text
    assert ("is a folder" if kind == "folder" else "cannot write here") in caplog.text
    assert "Traceback" not in caplog.text


def test_empty_input_file_is_a_one_line_error(
    model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = tmp_path / "empty.csv"
    src.write_text("")
    out = tmp_path / "o.csv"
    assert main(["annotate", str(src), "-o", str(out), "--model", str(model_dir)]) == 2
    assert not out.exists()
    assert "empty file" in caplog.text and "Traceback" not in caplog.text
    # A header without rows is a table of zero rows: the output has the columns, no rows.
    src.write_text("smiles,id\n")
    assert main(["annotate", str(src), "-o", str(out), "--model", str(model_dir),
                 "--no-cache"]) == 0  # fmt: skip
    table = pd.read_csv(out)
    assert len(table) == 0 and list(table.columns[:3]) == ["smiles", "id", "description"]


def test_failure_after_the_first_batch_leaves_no_output(
    model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad line after the first batch stops the run (exit 2) and writes nothing: neither a
    file of the first batch's rows that looks finished nor a temporary file. (The probe's
    3 MB table failed after row 1,000; the behaviour does not depend on the size.)"""
    src = _table(tmp_path / "t.csv", 150)
    with open(src, "a") as fh:
        fh.write('150,"CCO\n')  # an unterminated quote: unreadable from here
    out = tmp_path / "out.csv"
    code = main(["annotate", str(src), "-o", str(out), "--model", str(model_dir), "--no-cache",
                 "--batch-rows", "100", "--tasks", "property", "--properties", "gap"])  # fmt: skip
    assert code == 2 and "unreadable CSV" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


# ------------------------------------------------------------------ clean interrupts


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_writes_nothing_keeps_the_cache_and_resumes(
    model_dir: Path, tmp_path: Path, sig: int, code: int
) -> None:
    src = _table(tmp_path / "t.csv", 100)
    out = tmp_path / "out.parquet"
    cache = tmp_path / "answers.sqlite"
    args = [str(src), "-o", str(out), "--cache", str(cache), "--batch-rows", "10",
            "--tasks", "property", "--properties", "gap"]  # fmt: skip
    proc = _spawn(_cli(model_dir, *args))
    _wait_for_progress(proc)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr[-2000:]
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert "not written" in last and "rerun the same command to resume" in last
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []
    assert stdout == ""  # no summary: the run did not finish

    done = subprocess.run(
        _cli(model_dir, *args), cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["cache_hits"] >= 10  # the interrupted run's answers were kept
    assert len(pd.read_parquet(out)) == 100


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(x) for x in (task / "children").read_text().split()]
    return kids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_sigkill_leaves_no_output_and_no_workers(model_dir: Path, tmp_path: Path) -> None:
    src = _table(tmp_path / "t.csv", 100)
    out = tmp_path / "out.csv"
    cmd = _cli(model_dir, str(src), "-o", str(out), "--no-cache", "--batch-rows", "10",
               "--tasks", "property", "--properties", "gap")  # fmt: skip
    cmd[cmd.index("--workers") + 1] = "2"
    proc = _spawn(cmd)
    _wait_for_progress(proc)
    workers = _children(proc.pid)
    assert len(workers) >= 2
    proc.kill()
    proc.communicate(timeout=60)
    assert not out.exists()  # only the temporary file may be left behind
    deadline = time.monotonic() + 30
    alive = workers
    while alive and time.monotonic() < deadline:
        alive = [w for w in alive if Path(f"/proc/{w}").exists() and _not_zombie(w)]
        time.sleep(0.2)
    assert alive == [], "worker processes outlived their parent"


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


# ----------------------------------------------------- the model asked for, or an error


def test_incomplete_model_directory_is_an_error(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from llamo_plugin import registry

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / MANIFEST).unlink()
    with pytest.raises(CheckpointError, match="manifest"):
        registry.load_model_or_default(broken)
    # The embedded model missing its manifest: an error naming the fix, never a random model.
    monkeypatch.setattr(registry, "embedded_model_dir", lambda: broken)
    with pytest.raises(CheckpointError, match="reinstall"):
        registry.load_model_or_default(None)


# --------------------------------------------------- same cells whatever the batching


def test_outputs_do_not_depend_on_batch_rows(model_dir: Path, tmp_path: Path) -> None:
    """The same cells whether the table is read in one batch or in batches of 7 (free text
    of up to 64 tokens and numbers; docs/benchmarks.md measures the embedded model)."""
    src = _table(tmp_path / "t.csv", 30)
    tables = []
    for rows in ("1000", "7"):
        out = tmp_path / f"o{rows}.csv"
        assert main(["annotate", str(src), "-o", str(out), "--model", str(model_dir),
                     "--no-cache", "--batch-rows", rows, "--workers", "1",
                     "--tasks", "qa,property", "--question", "How many rings?"]) == 0  # fmt: skip
        tables.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert tables[0]["answer"].notna().all()


# ------------------------------------------------------------ logs, summary, threads


def test_summary_on_stdout_logs_on_stderr_and_quiet(model_dir: Path, tmp_path: Path) -> None:
    src = _table(tmp_path / "t.csv", 4)
    out = tmp_path / "o.csv"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [*_cli(model_dir, str(src), "-o", str(out), "--no-cache", "--threads", "1")],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(run.stdout)  # stdout is exactly the JSON summary
    assert summary["rows"] == 4 and summary["threads"] == 1
    assert "annotated 4 rows" in run.stderr
    assert "Loading weights" not in run.stderr
    quiet = subprocess.run(
        [*_cli(model_dir, str(src), "-o", str(out), "--no-cache", "-q")],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert quiet.returncode == 0 and json.loads(quiet.stdout)["rows"] == 4
    assert quiet.stderr.strip() == ""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
def test_threads_follow_cpu_affinity(model_dir: Path, tmp_path: Path) -> None:
    src = _table(tmp_path / "t.csv", 2)
    run = subprocess.run(
        _cli(model_dir, str(src), "-o", str(tmp_path / "o.csv"), "--no-cache"),
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)["threads"] == 1


def test_verbosity_options_before_or_after_the_subcommand() -> None:
    import logging

    from llamo_plugin.cli.main import build_parser, log_level

    parser = build_parser()
    assert parser.parse_args(["annotate", "a.csv", "-o", "b.csv", "-v"]).verbose == 1
    assert parser.parse_args(["-v", "annotate", "a.csv", "-o", "b.csv"]).verbose == 1
    assert parser.parse_args(["annotate", "a.csv", "-o", "b.csv", "-q"]).quiet is True
    assert parser.parse_args(["annotate", "a.csv", "-o", "b.csv"]).verbose == 0
    assert log_level(1, False) == (logging.DEBUG, logging.INFO)
    assert log_level(0, True) == (logging.WARNING, logging.WARNING)
