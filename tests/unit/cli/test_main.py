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
    for name in ("annotate", "info", "convert-checkpoint"):
        assert name in done.stdout
    assert " demo " not in done.stdout  # removed: `make demo` runs `llamo annotate`


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
