"""The built wheel works outside the checkout: its files alone (the embedded model, the
reference set, the splits) annotate a small table, run from another folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_annotates_outside_the_checkout(tmp_path: Path) -> None:
    dist, site, work = tmp_path / "dist", tmp_path / "site", tmp_path / "elsewhere"
    work.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(REPO)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = dist.glob("llamo_plugin-*.whl")
    install = subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    assert not (site / "tests").exists()  # the test stand-in is never shipped
    # nor a top-level package named after a tool folder (export/, tools/)
    assert not (site / "export").exists() and not (site / "tools").exists()
    assert (site / "llamo_plugin" / "export" / "onnx_graph.py").is_file()  # llamo export-onnx

    (work / "mols.csv").write_text("name,smiles\nethanol,CCO\nbroken,C1CC(\n")
    # The installed copy only: the wheel's folder first, the checkout nowhere on the path.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    code = (
        "import sys, llamo_plugin; print(llamo_plugin.__file__, file=sys.stderr); "
        "from llamo_plugin.cli.main import main; sys.exit(main())"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, "annotate", "mols.csv", "-o", "out.csv",
         "--tasks", "description,property", "--no-cache", "-q"],
        cwd=work, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr.splitlines()[0].startswith(str(site))  # not the checkout's package
    summary = json.loads(run.stdout)
    assert summary["model"].startswith("llamo-embedded") and summary["rows"] == 2
    import csv

    with open(work / "out.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == ["ethanol", "broken"]
    assert rows[0]["description"].startswith("The molecule") and not rows[1]["description"]
