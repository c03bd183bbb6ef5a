"""``llamo bench --server``: a server on loopback in the same process (the embedded model)
measured under concurrent clients beside the in-process run; the figures are consistent with
each other and with what was asked (not timings)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from llamo_plugin.bench import ServerBenchOptions, run_server_bench
from llamo_plugin.cli.main import main
from tests.unit.serve.embedded import EMBEDDED_NAME


def test_bench_server_figures(pipeline: Any) -> None:
    question = "How many rings does this molecule have?"  # short answers: a quick test
    options = ServerBenchOptions(molecules=2, clients=(1, 2), tasks=("qa",), question=question)
    result = json.loads(json.dumps(run_server_bench(pipeline, options)))  # JSON-able
    approx = pytest.approx
    assert result["model"] == EMBEDDED_NAME and len(result["model_sha256"]) == 64
    assert result["molecules"] == 2 and result["tasks"] == ["qa"]
    local = result["in_process"]
    runs = local["runs_mol_per_s"]
    assert local["molecules"] == 2 and len(runs) == 3  # before the levels and after each
    assert local["molecules_per_s"] == approx(sorted(runs)[1])  # the median
    assert result["server"].startswith("started in this process on http://127.0.0.1:")
    assert [level["clients"] for level in result["levels"]] == [1, 2]
    for i, level in enumerate(result["levels"]):
        # every row answered once, by one request per row (rows_per_request 1)
        assert level["failed_requests"] == 0 and level["failures"] == []
        assert level["requests"] == level["molecules"] == 2
        assert level["requests_per_s"] == approx(level["requests"] / level["seconds"])
        assert level["molecules_per_s"] == approx(level["molecules"] / level["seconds"])
        assert level["in_process_mol_per_s"] == approx((runs[i] + runs[i + 1]) / 2)
        assert level["speedup_vs_in_process"] == approx(
            level["molecules_per_s"] / level["in_process_mol_per_s"]
        )
        # the batcher ran exactly the rows sent, at most as many requests per run as clients
        assert level["mean_rows_per_run"] * level["model_runs"] == approx(2)
        assert 1 <= level["mean_requests_per_run"] <= level["clients"]
        assert level["identical_to_in_process"] == 1.0


def test_cli_bench_server_options_are_checked(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        assert main(["bench", "--server", "--clients", "0,8"]) == 2
        assert main(["bench", "--server", "--clients", "eight"]) == 2
        assert main(["bench", "--server", "--rows-per-request", "0"]) == 2
        assert main(["bench", "--server", "--tasks", "qa"]) == 2
    assert "must be positive" in caplog.text and "needs a question" in caplog.text
