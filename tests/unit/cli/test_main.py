"""The ``llamo`` console script, run as users run it (subprocess)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llamo_plugin.cli.main import main

ROOT = Path(__file__).resolve().parents[3]


def _llamo(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("llamo", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "llamo_plugin.cli.main"]
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=300, check=False, cwd=ROOT
    )


def test_help_lists_subcommands() -> None:
    done = _llamo("--help")
    assert done.returncode == 0
    for name in ("demo", "info", "convert-checkpoint"):
        assert name in done.stdout


def test_demo_prints_rows_with_statuses() -> None:
    done = _llamo("demo", "--max-new-tokens", "4")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    header = lines[0].split("\t")
    assert header[-5:] == ["description", "homo", "lumo", "gap", "status"]
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == 10  # every input row comes back, bad ones included
    assert all(len(r) == len(header) for r in rows)
    statuses = {r[1]: r[-1] for r in rows}
    assert statuses["not a molecule"] == "invalid_smiles"
    assert statuses["empty"] == "invalid_smiles"
    assert statuses["aspirin"] in {"eos", "length"}
    bad = next(r for r in rows if r[1] == "empty")
    assert bad[-5:-1] == ["", "", "", ""]  # missing values, not made-up numbers
    for r in rows:  # a property cell is empty or a number
        for cell in r[-4:-1]:
            assert cell == "" or float(cell) == float(cell)


def test_demo_bad_inputs_are_clear_errors(tmp_path, caplog) -> None:
    assert main(["demo", str(tmp_path / "missing.csv")]) == 2
    table = tmp_path / "t.csv"
    table.write_text("id,structure\n1,CCO\n")
    assert main(["demo", str(table)]) == 2
    assert "structure" in caplog.text


def test_info_on_saved_model(tiny_model, tmp_path, capsys) -> None:
    from llamo_plugin.checkpoint.format import save_model

    manifest = save_model(tiny_model, tmp_path / "m")
    assert main(["info", str(tmp_path / "m"), "--verify"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model_sha256"] == manifest["model_sha256"]
    assert info["verified"] is True
    assert main(["info", str(tmp_path / "nothing")]) == 2


@pytest.mark.parametrize("argv", [[], ["no-such-command"]])
def test_usage_errors(argv) -> None:
    if argv:
        with pytest.raises(SystemExit):
            main(argv)
    else:
        assert main(argv) == 2
