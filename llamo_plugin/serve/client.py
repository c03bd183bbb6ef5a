"""A small client of ``llamo serve``: what the KNIME nodes (and scripts) use instead of loading
a model themselves.

- :class:`LlamoClient`: ``health()`` (the served model: name, checksum, the tasks it was
  trained for, its retrieval default), ``check_token()`` and ``annotate(options, smiles,
  questions)``, one ``POST /v1/annotate`` returning the column dict that
  :meth:`Annotator.annotate <llamo_plugin.annotate.Annotator.annotate>` returns;
- :class:`RemoteAnnotator`: an :class:`~llamo_plugin.annotate.Annotator` look-alike (same
  ``annotate``, ``columns``, ``retrieval`` and ``stats``) that sends a batch to the server in
  requests of ``rows_per_request`` rows, polling ``should_stop`` between them.

Standard library only (``urllib``): the KNIME environment has no HTTP client package. Errors
are one line each, a :class:`ServerError` subclass naming the URL: unreachable (connection
refused, unknown host, timeout), the token refused (401/403), the request refused (another
4xx, with the server's message), the server failing (5xx). The token is sent only in the
``Authorization`` header: never logged, never in a message or a ``repr``.

Proxies: the process's ``HTTP(S)_PROXY``/``NO_PROXY`` apply (KNIME sets them from its
preferences), except for a loopback server, which is always reached directly.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llamo_plugin.annotate import (
    AnnotateOptions,
    AnnotateStats,
    RowError,
    check_model_tasks,
    output_columns,
)
from llamo_plugin.errors import CancelledError, ConfigError, LlamoError, brief
from llamo_plugin.serve.config import is_loopback

logger = logging.getLogger(__name__)

#: seconds to wait for ``/health`` and ``/v1/models`` (connecting included)
INFO_TIMEOUT_S = 15.0
#: seconds to wait for one ``/v1/annotate`` answer; above the server's own request
#: timeout (300 s by default), so that the server's 504 arrives first and says why
ANNOTATE_TIMEOUT_S = 600.0
#: rows per ``/v1/annotate`` request of :class:`RemoteAnnotator` (the server takes up to
#: 1,000 by default; smaller requests let a cancel take effect sooner)
ROWS_PER_REQUEST = 64
#: how often a request answered 503 "queue full" (with ``Retry-After``) is sent again
BUSY_RETRIES = 3
#: the AnnotateOptions fields the server sets itself (see ``annotate_api.SERVER_FIELDS``)
_SERVER_SIDE = ("reference_table", "limits", "question_column", "fail_on_error")


class ServerError(LlamoError):
    """A LLaMo server could not be used. ``url``: the server; ``status``: the HTTP status
    (None when no answer came)."""

    def __init__(self, message: str, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class ServerUnreachableError(ServerError):
    """No HTTP answer: connection refused, unknown host, timeout, TLS failure."""


class ServerAuthError(ServerError):
    """401/403: the server needs a token, or refused the one sent."""


class ServerRequestError(ServerError):
    """Another 4xx: the server refused the request as asked (its message says why)."""


class ServerFailureError(ServerError):
    """5xx, or an answer that is not what the API promises."""


def normalize_url(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash; ``ConfigError`` for
    anything else (no scheme, another scheme, no host, a bad port, a query or fragment, or
    a user name or password in the URL: the token belongs in a credentials variable)."""
    text = (url or "").strip()
    if not text:
        raise ConfigError("no server URL: give one like http://127.0.0.1:8000")
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"server URL {brief(text, 120)} is not an http:// or https:// URL with a host "
            "(e.g. http://127.0.0.1:8000)"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "the server URL must not carry a user name or password; give the token as the "
            "password of a credentials flow variable"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigError(f"server URL {brief(text, 120)} has an invalid port") from None
    if not parts.hostname:
        raise ConfigError(f"server URL {brief(text, 120)} has no host")
    if parts.query or parts.fragment:
        raise ConfigError(f"server URL {brief(text, 120)} must not have a query or fragment")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def sends_token_in_clear(url: str) -> bool:
    """Whether a token sent to ``url`` would cross the network unencrypted (plain http to a
    host other than this machine)."""
    parts = urllib.parse.urlsplit(url)
    return parts.scheme == "http" and not is_loopback(parts.hostname or "")


@dataclass(frozen=True)
class ServerInfo:
    """What ``GET /health`` says about the served model."""

    url: str
    model: str
    model_sha256: str
    #: the tasks the model was trained for (empty: the server does not say)
    tasks: tuple[str, ...]
    #: whether its descriptions are retrieval-augmented by default
    retrieval: bool
    status: str = "ok"
    backend: str = ""

    @property
    def label(self) -> str:
        """The model column's value: name and checksum, as the local nodes write it."""
        return f"{self.model} sha256:{self.model_sha256}"


class LlamoClient:
    """Talks to one ``llamo serve`` at ``url`` (``token``: its bearer token, or None for a
    server without one)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        info_timeout_s: float = INFO_TIMEOUT_S,
        annotate_timeout_s: float = ANNOTATE_TIMEOUT_S,
    ) -> None:
        self.url = normalize_url(url)
        self._token = token or None
        self.info_timeout_s = info_timeout_s
        self.annotate_timeout_s = annotate_timeout_s
        host = urllib.parse.urlsplit(self.url).hostname or ""
        handlers: list[Any] = [urllib.request.ProxyHandler({})] if is_loopback(host) else []
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:  # never the token
        return f"LlamoClient({self.url!r}, token={'set' if self._token else 'none'})"

    # ---------------------------------------------------------------------- requests
    def _request(self, method: str, path: str, body: Any, timeout: float) -> Any:
        """The JSON answer of one request; :class:`ServerError` subclasses otherwise."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        where = f"{method} {self.url}{path}"
        for attempt in range(BUSY_RETRIES + 1):
            request = urllib.request.Request(
                self.url + path, data=data, headers=headers, method=method
            )
            try:
                with self._opener.open(request, timeout=timeout) as response:
                    raw = response.read()
            except urllib.error.HTTPError as exc:
                wait = _retry_after(exc) if attempt < BUSY_RETRIES else None
                if wait is None:
                    raise self._http_error(exc) from None
                logger.info("%s: server busy (503), retrying in %.1f s", where, wait)
                time.sleep(wait)
                continue
            except (urllib.error.URLError, OSError) as exc:
                raise ServerUnreachableError(
                    f"cannot reach the LLaMo server at {self.url}: {_reason(exc, timeout)}",
                    self.url,
                ) from None
            try:
                return json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise ServerFailureError(
                    f"the server at {self.url} answered {where} with something that is not "
                    f"JSON ({brief(raw[:80])}): is it a LLaMo server?",
                    self.url,
                    200,
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _http_error(self, exc: urllib.error.HTTPError) -> ServerError:
        status = exc.code
        code, message = _error_body(exc)
        detail = f"{status}{' ' + code if code else ''}: {message}"
        if status in (401, 403):
            what = "needs a token" if code == "missing_token" else "refused the token"
            return ServerAuthError(
                f"the LLaMo server at {self.url} {what} ({detail})", self.url, status
            )
        if status == 404:
            return ServerRequestError(
                f"the server at {self.url} has no LLaMo API there ({detail}): is the URL that "
                "of a `llamo serve` (without /v1)?",
                self.url,
                status,
            )
        if status < 500:
            return ServerRequestError(
                f"the LLaMo server at {self.url} refused the request ({detail})", self.url, status
            )
        return ServerFailureError(
            f"the LLaMo server at {self.url} failed ({detail})", self.url, status
        )

    # ------------------------------------------------------------------------ the API
    def health(self) -> ServerInfo:
        """``GET /health``: the served model (the token is not checked there)."""
        body = self._request("GET", "/health", None, self.info_timeout_s)
        try:
            return ServerInfo(
                url=self.url,
                model=str(body["model"]),
                model_sha256=str(body["model_sha256"]),
                tasks=tuple(str(t) for t in body.get("tasks") or ()),
                retrieval=bool(body.get("retrieval", False)),
                status=str(body.get("status", "ok")),
                backend=str(body.get("backend", "")),
            )
        except (KeyError, TypeError, AttributeError):
            raise ServerFailureError(
                f"the server at {self.url} answered /health without a model: is it a LLaMo server?",
                self.url,
                200,
            ) from None

    def check_token(self) -> None:
        """``GET /v1/models``: :class:`ServerAuthError` when the server refuses the token."""
        self._request("GET", "/v1/models", None, self.info_timeout_s)

    def annotate_body(
        self,
        options: AnnotateOptions,
        smiles: Sequence[str | None],
        questions: Sequence[str | None] | None = None,
    ) -> dict[str, Any]:
        """The whole ``/v1/annotate`` answer for these rows (columns, model, settings, stats)."""
        body = request_body(options, smiles, questions)
        answer = self._request("POST", "/v1/annotate", body, self.annotate_timeout_s)
        columns = answer.get("columns") if isinstance(answer, dict) else None
        if not isinstance(columns, dict) or answer.get("ids") != body["ids"]:
            raise ServerFailureError(
                f"the server at {self.url} answered /v1/annotate without the rows sent",
                self.url,
                200,
            )
        for key, values in columns.items():
            if not isinstance(values, list) or len(values) != len(smiles):
                raise ServerFailureError(
                    f"the server at {self.url} answered {len(values)} values of {key!r} "
                    f"for {len(smiles)} rows",
                    self.url,
                    200,
                )
        return answer

    def annotate(
        self,
        options: AnnotateOptions,
        smiles: Sequence[str | None],
        questions: Sequence[str | None] | None = None,
    ) -> dict[str, list[Any]]:
        """The columns :meth:`Annotator.annotate <llamo_plugin.annotate.Annotator.annotate>`
        returns for these rows, computed by the server (one request). ``fail_on_error`` is
        not applied here (:class:`RemoteAnnotator` does)."""
        return dict(self.annotate_body(options, smiles, questions)["columns"])


def request_body(
    options: AnnotateOptions,
    smiles: Sequence[str | None],
    questions: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """The ``/v1/annotate`` body for ``options`` and these rows. ``ConfigError`` for a
    reference table (the server's own, chosen when it starts)."""
    if options.reference_table:
        raise ConfigError(
            "a LLaMo server retrieves from its own reference table (llamo serve "
            "--reference-table); leave the reference table empty"
        )
    fields = {k: v for k, v in options.to_dict().items() if k not in _SERVER_SIDE}
    body: dict[str, Any] = {"smiles": list(smiles), "ids": list(range(len(smiles)))}
    if questions is not None:
        if len(questions) != len(smiles):
            raise ValueError(f"{len(questions)} questions for {len(smiles)} SMILES")
        body["questions"] = [q if isinstance(q, str) else None for q in questions]
        fields["question"] = ""  # per-row questions replace the one question
    body.update(fields)
    return body


class RemoteAnnotator:
    """:class:`~llamo_plugin.annotate.Annotator`'s interface, answered by a server.

    ``info``: the server's :meth:`LlamoClient.health` (fetched here when not given);
    ``rows_per_request``: rows per request (:data:`ROWS_PER_REQUEST` when not given); the
    tasks are checked against the model's as the Annotator checks them (``ConfigError``), and
    every answer must come from that model (its checksum), or :class:`ServerFailureError`
    says the server changed models.
    """

    def __init__(
        self,
        client: LlamoClient,
        options: AnnotateOptions,
        info: ServerInfo | None = None,
        *,
        rows_per_request: int | None = None,
    ) -> None:
        rows_per_request = rows_per_request or ROWS_PER_REQUEST
        if rows_per_request < 1:
            raise ConfigError("rows_per_request must be >= 1")
        self.client = client
        self.options = options
        self.info = info or client.health()
        if self.info.tasks:
            check_model_tasks(options, self.info.tasks, self.info.model)
        request_body(options, [])  # the options are sendable (no local reference table)
        self.retrieval = options.uses_retrieval(self.info.retrieval)
        self.rows_per_request = rows_per_request
        self.stats = AnnotateStats()

    def columns(self) -> list[Any]:
        """The columns :meth:`annotate` returns, in order."""
        return output_columns(self.options, self.retrieval)

    def annotate(
        self,
        smiles: Sequence[Any],
        questions: Sequence[Any] | None = None,
        *,
        progress: Callable[[int, int], Any] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> dict[str, list[Any]]:
        """Output columns for one batch, as :meth:`Annotator.annotate
        <llamo_plugin.annotate.Annotator.annotate>` returns them: :class:`RowError` for the
        first bad row under ``fail_on_error``, :class:`CancelledError` when ``should_stop()``
        turns true (checked before each request)."""
        keys = [c.key for c in self.columns()]
        out: dict[str, list[Any]] = {k: [] for k in keys}
        n = len(smiles)
        for start in range(0, n, self.rows_per_request):
            if should_stop is not None and should_stop():
                raise CancelledError("stopped between server requests")
            end = min(start + self.rows_per_request, n)
            rows = list(smiles[start:end])
            asked = None if questions is None else list(questions[start:end])
            answer = self.client.annotate_body(self.options, rows, asked)
            self._check_model(answer)
            columns = answer["columns"]
            if list(columns) != keys:
                raise ServerFailureError(
                    f"the server at {self.client.url} answered the columns {list(columns)}, "
                    f"expected {keys}",
                    self.client.url,
                    200,
                )
            for key in keys:
                out[key].extend(columns[key])
            stats = answer.get("stats") or {}
            self.stats.cache_hits += int(stats.get("cache_hits", 0))
            self.stats.generated += int(stats.get("generated", 0))
            errors = columns["llamo_error"]
            if self.options.fail_on_error:
                bad = next((i for i, e in enumerate(errors) if e is not None), None)
                if bad is not None:
                    self._count(errors[: bad + 1])
                    raise RowError(start + bad, rows[bad], str(errors[bad]))
            self._count(errors)
            if progress is not None:
                progress(end, n)
        return out

    def _count(self, errors: list[Any]) -> None:
        self.stats.rows += len(errors)
        for e in errors:
            if e is not None:
                self.stats.errors[str(e).split(":", 1)[0]] += 1

    def _check_model(self, answer: dict[str, Any]) -> None:
        sha = answer.get("model_sha256")
        if sha != self.info.model_sha256:
            raise ServerFailureError(
                f"the server at {self.client.url} now serves another model "
                f"({answer.get('model')!s} sha256:{str(sha)[:12]}…) than it did "
                f"({self.info.model} sha256:{self.info.model_sha256[:12]}…)",
                self.client.url,
                200,
            )


def _error_body(exc: urllib.error.HTTPError) -> tuple[str, str]:
    """(code, message) of a LLaMo/OpenAI-style error body, or of whatever came instead."""
    try:
        raw = exc.read()
    except OSError:
        raw = b""
    try:
        error = json.loads(raw)["error"]
        return str(error.get("code") or ""), str(error.get("message") or exc.reason)
    except (ValueError, KeyError, TypeError, AttributeError):
        text = raw.decode("utf-8", "replace").strip()
        return "", brief(text, 160) if text else str(exc.reason)


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    """Seconds to wait before sending again a request answered 503 with ``Retry-After``
    (a busy server), or None (not to be retried)."""
    if exc.code != 503 or exc.headers is None:
        return None
    value = exc.headers.get("Retry-After")
    try:
        return min(max(float(value), 0.1), 10.0) if value is not None else None
    except ValueError:
        return None


def _reason(exc: BaseException, timeout: float) -> str:
    """Why no answer came, in words."""
    reason: Any = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (is `llamo serve` running there, on that port?)"
    if isinstance(reason, socket.gaierror):
        return f"unknown host ({reason.strerror or reason})"
    if isinstance(reason, ConnectionResetError):
        return "the connection was reset"
    text = getattr(reason, "strerror", None) or str(reason)
    return f"{type(reason).__name__}: {brief(text, 160)}"
