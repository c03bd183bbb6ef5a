"""``llamo serve`` as a command: refuses unsafe or unusable set-ups before loading a model,
and on a real SIGTERM answers every open request (here: 503, no grace) before exiting 0."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from llamo_plugin.cli.main import main
from llamo_plugin.serve.auth import TOKEN_ENV
from tests.unit.serve.conftest import MOLECULES

REPO = Path(__file__).resolve().parents[3]
TOKEN = "cli-token-0123456789abcdef"


def test_fastapi_and_uvicorn_load_only_when_the_server_starts() -> None:
    code = (
        "import sys; from llamo_plugin.cli.main import build_parser; build_parser(); "
        "import llamo_plugin.serve, llamo_plugin.serve.config, llamo_plugin.serve.auth; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'prometheus_client') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_public_address_without_token_is_refused(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with caplog.at_level(logging.ERROR):
        assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "token is required" in caplog.text


def test_unusable_token_or_port_is_refused(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with caplog.at_level(logging.ERROR):
        assert main(["serve", "--token-file", str(tmp_path / "missing"), "--port", "0"]) == 2
        monkeypatch.setenv(TOKEN_ENV, "short")
        assert main(["serve", "--port", "0"]) == 2
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            assert main(["serve", "--port", str(taken.getsockname()[1])]) == 2
    assert "token file" in caplog.text and "at least 16" in caplog.text
    assert "cannot listen on 127.0.0.1" in caplog.text
    assert TOKEN not in caplog.text


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), TOKEN_ENV: TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "llamo_plugin.cli.main", "serve", "--port", "0", *args],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        if found:
            return proc, found.group(1)
    proc.kill()
    pytest.fail("llamo serve did not start:\n" + "".join(seen)[-3000:])


def _wait(check: Any, timeout_s: float = 120) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_sigterm_answers_every_open_request(tmp_path: Path) -> None:
    proc, url = _start("--no-cache", "--shutdown-grace", "0", "--batch-wait-ms", "0")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    health = httpx.Client(base_url=url, timeout=30)

    def post(body: dict[str, Any]) -> httpx.Response:
        with httpx.Client(base_url=url, headers=headers, timeout=300) as c:
            return c.post("/v1/annotate", json=body)

    try:
        with ThreadPoolExecutor(5) as pool:
            long = pool.submit(post, {"smiles": MOLECULES, "tasks": ["description"]})
            assert _wait(lambda: health.get("/health").json()["running_rows"] > 0)
            short = [
                pool.submit(post, {"smiles": [m], "tasks": ["property"], "properties": ["homo"]})
                for m in MOLECULES[:4]
            ]
            assert _wait(lambda: health.get("/health").json()["queue_depth"] == 4)
            proc.send_signal(signal.SIGTERM)
            responses = [long.result(), *(f.result() for f in short)]
        _, stderr = proc.communicate(timeout=120)
    finally:
        health.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    assert "stopped" in stderr and TOKEN not in stderr
    # every request got a whole answer: its rows, or an explicit 503 (none was dropped)
    for r in responses:
        assert r.status_code in (200, 503), r.text
        if r.status_code == 503:
            assert r.json()["error"]["code"] == "shutting_down"
            assert "send it again" in r.json()["error"]["message"]
        else:
            assert len(r.json()["columns"]["llamo_error"]) == len(
                json.loads(r.request.content)["smiles"]
            )
    # the four queued when the signal came were refused explicitly (no grace)
    assert [r.status_code for r in responses[1:]] == [503] * 4
