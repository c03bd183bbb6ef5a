"""``llamo serve``'s HTTP API, for real: uvicorn on 127.0.0.1 (an ephemeral port), the
embedded model, concurrent clients (httpx and the ``openai`` library), raw sockets that leave
mid-request. Answers equal the local pipeline's for the same rows; nothing is lost,
duplicated or reordered; every bad request gets a clear JSON error."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llamo_plugin.annotate import AnnotateOptions, Annotator
from llamo_plugin.serve.config import ServeConfig
from llamo_plugin.serve.server import background_server
from tests.unit.serve.conftest import BAD, MOLECULES
from tests.unit.serve.embedded import EMBEDDED_NAME

TOKEN = "test-token-0123456789abcdef"
CONFIG = ServeConfig(
    port=0, max_rows=20, max_body_bytes=16_384, max_smiles_chars=200, max_new_tokens=32
)
ROWS = MOLECULES + BAD  # "C" * 300 is over the server's 200 characters: too_large
HOMO = {"tasks": ["property"], "properties": ["homo"]}
QUESTIONS = ["How many rings does this molecule have?", None, "Is this molecule an acid?"]
CHAT = "What is the HOMO energy of this molecule in Hartree?"
CHAT_TOKENS = 8


@pytest.fixture(scope="module")
def expected(pipeline: Any) -> dict[str, Any]:
    """The local answers (the same Annotator and Pipeline calls, no server), computed before
    any server's batcher runs the pipeline."""
    homo = Annotator(
        pipeline, AnnotateOptions(tasks=("property",), properties=("homo",), limits=CONFIG.limits)
    )
    qa = Annotator(
        pipeline, AnnotateOptions(tasks=("qa",), question_column="q", limits=CONFIG.limits)
    )
    decode = pipeline.model.config.decode.replace(max_new_tokens=CHAT_TOKENS)
    chat = pipeline.run(MOLECULES, CHAT, task="chat", decode=decode)
    return {
        "homo": homo.annotate(ROWS),
        "qa": qa.annotate(MOLECULES[:3], QUESTIONS),
        "chat": {s: r for s, r in zip(MOLECULES, chat, strict=True)},
    }


@pytest.fixture(scope="module")
def server(pipeline: Any, expected: Any) -> Iterator[Any]:
    with background_server(lambda: pipeline, CONFIG, token=TOKEN, close_pipeline=False) as s:
        yield s


def client(server: Any, token: str | None = TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=300)


def metric(server: Any, name: str, **labels: str) -> float:
    """A sample of the server's /metrics (0 when absent)."""
    with client(server) as c:
        text = c.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def eventually(check: Callable[[], bool], timeout_s: float = 60) -> bool:
    """Whether ``check()`` turns true within ``timeout_s`` (polled; not a timing assert)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def assert_rows_equal(body: dict[str, Any], expected: dict[str, list[Any]], idx: list[int]) -> None:
    assert list(body["columns"]) == list(expected)  # the Annotator's columns, in its order
    for key, values in body["columns"].items():
        assert values == [expected[key][i] for i in idx], key


# ---------------------------------------------------------------- the batch endpoint


def test_concurrent_clients_get_the_local_answers(server: Any, expected: Any) -> None:
    """8 clients x 2 requests of 5 rows each (overlapping molecules, bad rows among them):
    each row's columns equal the local Annotator's, in order, ids echoed; the batcher ran
    exactly the rows sent (none lost, none run twice)."""
    rows_before = metric(server, "llamo_batch_rows_sum")

    def work(i: int) -> list[tuple[list[int], dict[str, Any]]]:
        out = []
        with client(server) as c:
            for k in range(2):
                idx = [(i + 3 * k + j) % len(ROWS) for j in range(5)]
                body = {"smiles": [ROWS[j] for j in idx], "ids": idx, **HOMO}
                r = c.post("/v1/annotate", json=body)
                assert r.status_code == 200, r.text
                out.append((idx, r.json()))
        return out

    with ThreadPoolExecutor(8) as pool:
        results = [x for xs in pool.map(work, range(8)) for x in xs]
    assert len(results) == 16
    for idx, body in results:
        assert body["ids"] == idx and body["rows"] == len(idx)
        assert_rows_equal(body, expected["homo"], idx)
        assert body["model"] == EMBEDDED_NAME and len(body["model_sha256"]) == 64
        assert body["settings"]["properties"] == ["homo"]
        assert body["settings"]["limits"] == {"max_chars": 200, "max_atoms": 1000}
        assert body["settings"]["decode"]["property"]["answer_format"]
    statuses = {e.split(":")[0] for _, b in results for e in b["columns"]["llamo_error"] if e}
    assert statuses == {"invalid_smiles", "too_large"}  # bad rows are data, not errors
    assert metric(server, "llamo_batch_rows_sum") - rows_before == 16 * 5


def test_per_row_questions(server: Any, expected: Any) -> None:
    with client(server) as c:
        r = c.post(
            "/v1/annotate", json={"smiles": MOLECULES[:3], "tasks": ["qa"], "questions": QUESTIONS}
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert_rows_equal(body, expected["qa"], [0, 1, 2])
    assert body["columns"]["llamo_error"][1].startswith("missing_instruction")
    assert body["settings"]["questions"] == "per row"


# --------------------------------------------------------- the OpenAI-compatible API


def test_openai_client_concurrently(server: Any, expected: Any) -> None:
    oa = openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0)
    (model,) = [m.id for m in oa.models.list()]
    assert model == EMBEDDED_NAME

    def ask(smiles: str) -> Any:
        return oa.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": f"{CHAT}\n<smiles>{smiles}</smiles>"}],
            max_tokens=CHAT_TOKENS,
            temperature=0.7,  # accepted and ignored: decoding is greedy
        )

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, MOLECULES))
    for smiles, answer in zip(MOLECULES, answers, strict=True):
        local = expected["chat"][smiles]
        choice = answer.choices[0]
        assert choice.message.role == "assistant"
        assert choice.message.content == local.text
        assert choice.finish_reason == ("length" if local.stop_reason == "length" else "stop")
        assert answer.object == "chat.completion" and answer.model == model
        usage = answer.usage
        assert usage.prompt_tokens > 28 and 0 < usage.completion_tokens <= CHAT_TOKENS
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert len({a.id for a in answers}) == len(answers)
    # streaming: the same answer in OpenAI's chunk format
    stream = oa.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": f"{CHAT} <smiles>{MOLECULES[0]}</smiles>"}],
        max_tokens=CHAT_TOKENS,
        stream=True,
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        expected["chat"][MOLECULES[0]].text
    )
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    # the 'smiles' body field instead of a span
    answer = oa.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": CHAT}],
        max_tokens=CHAT_TOKENS,
        extra_body={"smiles": MOLECULES[1]},
    )
    assert answer.choices[0].message.content == expected["chat"][MOLECULES[1]].text


def test_openai_errors_reach_the_client(server: Any) -> None:
    oa = openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0)
    with pytest.raises(openai.BadRequestError, match="no molecule"):
        oa.chat.completions.create(
            model=EMBEDDED_NAME, messages=[{"role": "user", "content": "Describe it."}]
        )
    with pytest.raises(openai.BadRequestError, match="invalid_smiles"):
        oa.chat.completions.create(
            model=EMBEDDED_NAME,
            messages=[{"role": "user", "content": "Describe <smiles>C1CC</smiles>"}],
        )
    with pytest.raises(openai.NotFoundError, match="is not served here"):
        oa.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "<smiles>C</smiles> hi"}]
        )
    wrong = openai.OpenAI(
        base_url=f"{server.url}/v1", api_key="wrong-key-0123456789", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()


# -------------------------------------------------------------- auth, limits, errors


PROTECTED = [
    ("POST", "/v1/annotate"),
    ("GET", "/v1/models"),
    ("GET", "/metrics"),
    ("POST", "/v1/chat/completions"),
]


def test_token_is_required(server: Any) -> None:
    for token, code in ((None, "missing_token"), ("x" * 30, "invalid_token")):
        with client(server, token) as c:
            for method, path in PROTECTED:
                r = c.request(method, path, json={"smiles": ["C"]})
                assert r.status_code == 401, (path, r.text)
                assert r.json()["error"]["code"] == code
                assert r.headers["www-authenticate"].startswith("Bearer")
                assert TOKEN not in r.text
    with client(server, None) as c:
        health = c.get("/health")  # open: for load balancers; no secrets in it
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["model"] == EMBEDDED_NAME


def test_bad_requests_get_clear_json_errors(server: Any) -> None:
    with client(server) as c:
        post = c.post
        cases = [
            (post("/v1/annotate", content=b'{"smiles": ["CCO",'), 422, "malformed JSON"),
            (post("/v1/annotate", content=b""), 422, "empty body"),
            (post("/v1/annotate", json={"smiles": ["C"], "colour": 1}), 422, "unknown field"),
            (post("/v1/annotate", json={"smiles": ["C"] * 21}), 413, "at most 20 per request"),
            (post("/v1/annotate", json={"smiles": ["C" * 17_000]}), 413, "at most 16,384"),
            (
                post("/v1/annotate", json={"smiles": ["C"], "reference_table": "/etc/passwd"}),
                422,
                "chosen when the server starts",
            ),
            (
                post(
                    "/v1/chat/completions",
                    json={
                        "model": EMBEDDED_NAME,
                        "messages": [{"role": "user", "content": "Describe it."}],
                    },
                ),
                400,
                "<smiles>",
            ),
            (
                post("/v1/annotate", json={"smiles": ["C"], "tasks": ["forward"]}),
                422,
                "not trained for the task(s) forward",
            ),
            (c.get("/v1/annotate"), 405, "Method Not Allowed"),
            (c.get("/nowhere"), 404, "Not Found"),
        ]
        # a body over the limit without a Content-Length (chunked) is cut off while read
        chunked = post("/v1/annotate", content=iter([b'{"smiles": ["' + b"C" * 9_000] * 2))
        cases.append((chunked, 413, "over this server's limit"))
    for r, status, words in cases:
        assert r.status_code == status, r.text
        err = r.json()["error"]
        assert words in err["message"], err
        assert set(err) == {"message", "type", "code", "param"}
        assert len(r.text) < 1_000  # inputs quoted briefly


# ------------------------------------------------------------------- disconnects


def raw_request(server: Any, body: bytes, *, declared: int | None = None) -> socket.socket:
    """A socket that has sent a POST /v1/annotate (and is left open for the caller)."""
    url = urlparse(server.url)
    sock = socket.create_connection((url.hostname, url.port))
    head = (
        f"POST /v1/annotate HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {declared or len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


def post_homo(server: Any, smiles: list[Any]) -> httpx.Response:
    with client(server) as c:
        return c.post("/v1/annotate", json={"smiles": smiles, **HOMO})


def test_clients_that_leave_do_not_disturb_others(server: Any, expected: Any) -> None:
    """One client sends a long request and leaves while it runs, another leaves mid-body;
    clients meanwhile get their correct answers, and the server keeps serving."""
    gone_before = metric(server, "llamo_requests_total", endpoint="annotate", status="499")
    rows_before = metric(server, "llamo_batch_rows_sum")
    long = json.dumps({"smiles": MOLECULES, "tasks": ["description"]}).encode()
    leaver = raw_request(server, long)
    assert eventually(lambda: server.batcher.running_rows > 0 or server.batcher.queue_depth > 0)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(post_homo, server, ROWS[i : i + 3]) for i in range(4)]
        leaver.close()  # mid-request: its rows are queued or decoding
        half = raw_request(server, b'{"smiles": ["CC', declared=1_000)
        half.close()  # mid-body
        for i, f in enumerate(futures):
            r = f.result()
            assert r.status_code == 200, r.text
            assert_rows_equal(r.json(), expected["homo"], [i, i + 1, i + 2])
    assert eventually(
        lambda: (
            metric(server, "llamo_requests_total", endpoint="annotate", status="499")
            >= gone_before + 2
        )
    )
    with client(server) as c:
        r = c.post("/v1/annotate", json={"smiles": ROWS[:2], **HOMO})
    assert r.status_code == 200
    assert_rows_equal(r.json(), expected["homo"], [0, 1])
    # the leaver's descriptions were withdrawn and their batch stopped: only the rows of the
    # clients that stayed were run to the end
    assert metric(server, "llamo_batch_rows_sum") - rows_before == 4 * 3 + 2


# ------------------------------------------------------- timeouts and shutdown


def test_no_app_listens_beyond_loopback_without_a_token(pipeline: Any) -> None:
    from llamo_plugin.errors import ConfigError

    with (
        pytest.raises(ConfigError, match="token is required"),
        background_server(lambda: pipeline, CONFIG.replace(host="0.0.0.0"), close_pipeline=False),
    ):
        pass


def test_request_timeout_is_504(pipeline: Any, server: Any) -> None:
    config = CONFIG.replace(request_timeout_s=0.001)
    with (
        background_server(lambda: pipeline, config, close_pipeline=False) as s,
        httpx.Client(base_url=s.url, timeout=120) as c,
    ):
        r = c.post("/v1/annotate", json={"smiles": MOLECULES[:2], **HOMO})
        assert r.status_code == 504
        assert "request timeout (0.001 s)" in r.json()["error"]["message"]
        assert c.get("/health").status_code == 200  # still serving


def test_graceful_stop_finishes_queued_work(pipeline: Any, server: Any, expected: Any) -> None:
    """Stopping (uvicorn's graceful shutdown, as on SIGTERM) with a grace: work already
    running and requests queued behind it are answered in full."""
    from llamo_plugin.chem.smiles import DEFAULT_LIMITS
    from llamo_plugin.serve.batcher import BatchKey

    config = CONFIG.replace(shutdown_grace_s=600)
    with background_server(lambda: pipeline, config, close_pipeline=False) as s:
        # the model is busy with descriptions, so the requests below wait in the queue
        key = BatchKey("description", pipeline.model.config.decode, DEFAULT_LIMITS)
        busy = s.batcher.submit(key, MOLECULES[:3], ["Describe this molecule."] * 3)

        def post(i: int) -> httpx.Response:
            with httpx.Client(base_url=s.url, timeout=300) as c:
                return c.post("/v1/annotate", json={"smiles": ROWS[i : i + 3], **HOMO})

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(post, i) for i in range(4)]
            assert eventually(lambda: s.batcher.queue_depth == 4)
            assert not busy.future.done()
            stopper = threading.Thread(target=s.stop)
            stopper.start()
            responses = [f.result() for f in futures]
            stopper.join()
        assert [r.status for r in busy.future.result(timeout=0)] == ["ok"] * 3
    for i, r in enumerate(responses):
        assert r.status_code == 200, r.text
        assert_rows_equal(r.json(), expected["homo"], [i, i + 1, i + 2])
