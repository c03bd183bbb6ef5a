"""The ``llamo serve`` client (what the KNIME nodes use in server mode), against real servers:
``llamo serve`` on loopback with the embedded model, and small stdlib HTTP servers for what
the LLaMo server does not do on demand (500s, a busy 503, a web server that is not LLaMo,
one that never answers). Answers equal the local Annotator's; every failure is one line
naming the URL and never the token."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from llamo_plugin.annotate import AnnotateOptions, Annotator, RowError
from llamo_plugin.errors import CancelledError, ConfigError
from llamo_plugin.serve.client import (
    LlamoClient,
    RemoteAnnotator,
    ServerAuthError,
    ServerFailureError,
    ServerRequestError,
    ServerUnreachableError,
    normalize_url,
    request_body,
    sends_token_in_clear,
)
from llamo_plugin.serve.config import ServeConfig
from llamo_plugin.serve.server import background_server
from tests.unit.serve.conftest import MOLECULES

TOKEN = "client-test-token-0123456789"
ROWS = [MOLECULES[0], None, "not a smiles", MOLECULES[1], "", MOLECULES[0]]
QUESTIONS = ["How many rings does this molecule have?", "Is it an acid?", None, None, "x", "x"]
QA = AnnotateOptions(tasks=("qa",), question_column="q")


@pytest.fixture(scope="module")
def local_qa(pipeline: Any) -> dict[str, list[Any]]:
    """The local answers (no server), computed before any server runs the pipeline."""
    return Annotator(pipeline, QA).annotate(ROWS, QUESTIONS)


@pytest.fixture(scope="module")
def server(pipeline: Any, local_qa: Any) -> Iterator[Any]:
    with background_server(
        lambda: pipeline, ServeConfig(port=0), token=TOKEN, close_pipeline=False
    ) as s:
        yield s


def test_urls_are_checked() -> None:
    assert normalize_url(" http://127.0.0.1:8000/ ") == "http://127.0.0.1:8000"
    assert normalize_url("https://llamo.example.org/api/") == "https://llamo.example.org/api"
    bad = {
        "": "no server URL",
        "localhost:8000": "not an http",
        "ftp://host": "not an http",
        "http://": "not an http",
        "http://user:secret@host": "must not carry a user name or password",
        "http://host:99999": "invalid port",
        "http://host/?token=1": "query or fragment",
    }
    for url, message in bad.items():
        with pytest.raises(ConfigError, match=message):
            normalize_url(url)
    assert sends_token_in_clear("http://llamo.example.org")
    assert not sends_token_in_clear("https://llamo.example.org")
    assert not sends_token_in_clear("http://127.0.0.1:8000")
    assert not sends_token_in_clear("http://localhost:8000")


def test_health_names_the_model_and_its_tasks(server: Any, pipeline: Any) -> None:
    client = LlamoClient(server.url, TOKEN)
    info = client.health()
    config = pipeline.model.config
    assert (info.model, info.model_sha256) == (config.name, pipeline.model_checksum)
    assert info.tasks == tuple(config.tasks) and info.retrieval is config.retrieval.default
    assert info.label == f"{config.name} sha256:{pipeline.model.checksum}"
    client.check_token()
    assert TOKEN not in repr(client)


def test_remote_annotator_equals_the_local_one(server: Any, local_qa: Any) -> None:
    """Per-row questions, bad rows, duplicates, in requests of 4 rows: the Annotator's
    columns, row for row."""
    client = LlamoClient(server.url, TOKEN)
    remote = RemoteAnnotator(client, QA, rows_per_request=4)
    seen: list[tuple[int, int]] = []
    out = remote.annotate(ROWS, QUESTIONS, progress=lambda done, n: seen.append((done, n)))
    assert out == local_qa
    assert seen == [(4, 6), (6, 6)]
    assert remote.stats.rows == 6 and sum(remote.stats.errors.values()) == 4
    assert [c.key for c in remote.columns()] == list(out)
    assert client.annotate(QA, ROWS[:2], QUESTIONS[:2]) == {k: v[:2] for k, v in local_qa.items()}


def test_fail_on_error_and_cancel(server: Any) -> None:
    client = LlamoClient(server.url, TOKEN)
    options = QA.replace(question="How many rings?", question_column="", fail_on_error=True)
    remote = RemoteAnnotator(client, options, rows_per_request=1)
    with pytest.raises(RowError) as err:  # the first bad row, counted over the requests
        remote.annotate(["CCO", "c1ccccc1", "not a smiles", "CC"])
    assert err.value.row == 2 and err.value.reason.startswith("invalid_smiles")
    polls: list[int] = []

    def stop() -> bool:
        polls.append(1)
        return len(polls) > 1

    with pytest.raises(CancelledError):
        RemoteAnnotator(client, options, rows_per_request=1).annotate(["C", "CC"], should_stop=stop)
    assert len(polls) == 2  # polled before each request


def test_refusals_are_clear(server: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ServerAuthError, match=f"at {server.url} refused the token .*401"):
        LlamoClient(server.url, "wrong-token-0123456789").check_token()
    with pytest.raises(ServerAuthError, match="needs a token"):
        LlamoClient(server.url).annotate(QA, ["C"], ["How many rings?"])
    client = LlamoClient(server.url, TOKEN)
    with pytest.raises(ConfigError, match="not trained for the task"):
        RemoteAnnotator(client, AnnotateOptions(tasks=("forward",)))
    with pytest.raises(ServerRequestError, match=r"refused the request .*422.*not trained"):
        client.annotate(AnnotateOptions(tasks=("forward",)), ["C"])
    with pytest.raises(ConfigError, match="its own reference table"):
        request_body(AnnotateOptions(reference_table="/data/mine.tsv"), ["C"])
    with pytest.raises(ServerRequestError, match="no LLaMo API there"):
        LlamoClient(server.url + "/v1", TOKEN).check_token()
    assert TOKEN not in caplog.text


def test_unreachable_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):  # DNS here, not a proxy
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = rf"cannot reach .*:{port}: connection refused"
    with pytest.raises(ServerUnreachableError, match=refused):
        LlamoClient(f"http://127.0.0.1:{port}").health()
    with pytest.raises(ServerUnreachableError, match="unknown host"):
        LlamoClient("http://no-such-host.invalid:8000").health()
    with socket.socket() as s:  # listens, never answers
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        with pytest.raises(ServerUnreachableError, match=r"no answer within 0\.5 s"):
            LlamoClient(url, info_timeout_s=0.5).health()


def _http_server(handle: Callable[[BaseHTTPRequestHandler], None]) -> Any:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            handle(self)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def _reply(h: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    h.send_response(status)
    for k, v in headers.items():
        h.send_header(k.replace("_", "-"), v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def test_server_failures_and_strangers() -> None:
    calls: list[str] = []
    health = {"status": "ok", "model": "m", "model_sha256": "a" * 64, "tasks": ["qa"]}

    def handle(h: BaseHTTPRequestHandler) -> None:
        calls.append(h.path)
        error = {"error": {"message": "boom", "code": "internal_error"}}
        if h.path == "/health" and len(calls) == 1:  # busy once, then fine
            _reply(h, 503, json.dumps({"error": {"code": "queue_full"}}).encode(), Retry_After="0")
        elif h.path == "/health":
            _reply(h, 200, json.dumps(health).encode())
        elif h.path == "/v1/models":
            _reply(h, 500, json.dumps(error).encode())
        else:
            _reply(h, 200, b"<html>a web page</html>")

    httpd = _http_server(handle)
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        client = LlamoClient(url)
        info = client.health()  # after one retry
        assert (info.model, info.tasks, info.retrieval) == ("m", ("qa",), False)
        failed = rf"at {url} failed \(500 internal_error: boom"
        with pytest.raises(ServerFailureError, match=failed):
            client.check_token()
        with pytest.raises(ServerFailureError, match="not JSON"):
            client._request("GET", "/elsewhere", None, 5)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert calls[:2] == ["/health", "/health"]


def test_the_client_needs_no_server_packages() -> None:
    """The KNIME environment has neither the serve extra nor httpx: the client is stdlib."""
    import subprocess
    import sys

    code = (
        "import sys, llamo_plugin.serve.client; "
        "print([m for m in ('fastapi', 'uvicorn', 'starlette', 'httpx', 'torch') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
