"""The FastAPI app of ``llamo serve``: routes, authentication, limits, errors.

:func:`create_app` wires a started :class:`~llamo_plugin.serve.batcher.MicroBatcher` (which
holds the one model) to the HTTP API. Each request:

1. is authenticated first when a token is configured (401 otherwise, before its body is read);
2. is refused with 503 once the server is shutting down;
3. has its body read up to ``max_body_bytes`` (413 beyond, from ``Content-Length`` before
   reading when it is given) and parsed as JSON (422 with the parser's message if malformed);
4. is checked by its API module (:mod:`.annotate_api`, :mod:`.openai_api`): 422/413/400;
5. runs in a worker thread (at most ``max_concurrent_requests`` at once) that queues its rows
   in the batcher and waits for them under the request's deadline (504 after it), while the
   event loop watches the connection: a client that leaves withdraws its queued work (and a
   batch nobody waits for any more stops), without touching other clients' answers.

Errors are JSON in OpenAI's shape (:mod:`.errors`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from llamo_plugin.errors import ConfigError, LlamoError, brief
from llamo_plugin.serve.annotate_api import (
    AnnotatorPool,
    parse_annotate_request,
    row_statuses,
    run_annotate,
)
from llamo_plugin.serve.auth import check_bind, token_matches
from llamo_plugin.serve.batcher import (
    MicroBatcher,
    QueueFullError,
    ShuttingDownError,
    WithdrawnError,
)
from llamo_plugin.serve.config import ServeConfig
from llamo_plugin.serve.context import (
    BatchedPipeline,
    ClientGoneError,
    RequestContext,
    RequestTimeoutError,
)
from llamo_plugin.serve.errors import ApiError, invalid, too_large
from llamo_plugin.serve.metrics import MetricsMiddleware, ServeMetrics
from llamo_plugin.serve.openai_api import (
    answer_chat,
    chat_response,
    chat_stream,
    model_entry,
    models_response,
    parse_chat_request,
)

logger = logging.getLogger(__name__)


def to_api_error(exc: BaseException) -> ApiError:
    """The HTTP error a request ends with when ``exc`` stops it."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ConfigError):
        return invalid(str(exc), code="invalid_options")
    if isinstance(exc, QueueFullError):
        return ApiError(
            503, "queue_full", f"server busy: {exc}; retry later", headers={"Retry-After": "1"}
        )
    if isinstance(exc, ShuttingDownError):
        return ApiError(
            503,
            "shutting_down",
            f"{exc}; the request was not answered: send it again when the server is back",
        )
    if isinstance(exc, RequestTimeoutError):
        return ApiError(504, "timeout", str(exc))
    if isinstance(exc, ClientGoneError | WithdrawnError | ClientDisconnect):
        return ApiError(499, "client_closed", "the client closed the connection")
    return ApiError(500, "internal_error", f"{type(exc).__name__}: {brief(str(exc), 300)}")


class ServerState:
    """What the routes share: the batcher, the settings, the token, the metrics."""

    def __init__(
        self,
        batcher: MicroBatcher,
        config: ServeConfig,
        token: str | None,
        metrics: ServeMetrics,
        backend: str,
    ) -> None:
        self.batcher = batcher
        self.config = config
        self.token = token
        self.metrics = metrics
        self.backend = backend
        self.pool = AnnotatorPool(BatchedPipeline(batcher))
        self.started = time.time()
        self.draining = False
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def model_name(self) -> str:
        return str(self.batcher.model.config.name)

    @property
    def checksum(self) -> str:
        return str(self.batcher.pipeline.model_checksum)

    def begin_shutdown(self) -> None:
        """Refuse new requests; queued and running work gets ``shutdown_grace_s`` to finish
        (then it is answered 503). Called when uvicorn starts its graceful shutdown."""
        if not self.draining:
            self.draining = True
            self.batcher.begin_shutdown(self.config.shutdown_grace_s)

    def check_accepting(self) -> None:
        if self.draining or self.batcher.stopping:
            raise ApiError(
                503,
                "shutting_down",
                "the server is shutting down; send the request again when it is back",
            )

    async def in_worker(self, request: Request, ctx: RequestContext, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in a worker thread; if the client disconnects first, withdraw the
        request's work (``ctx.cancel()``) and end with :class:`ClientGoneError`."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.config.max_concurrent_requests)
        work = asyncio.ensure_future(anyio.to_thread.run_sync(fn, limiter=self._limiter))
        # The body has been read: the next message of this connection is its disconnect.
        watch = asyncio.ensure_future(request.receive())
        try:
            done, _ = await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
            if work in done:
                return work.result()
            ctx.cancel()
            work.add_done_callback(_ignore_result)  # ends soon: its jobs are withdrawn
            logger.info("client %s left before its answer", _client(request))
            raise ClientGoneError("the client closed the connection")
        finally:
            watch.cancel()


def _ignore_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "?"


async def read_json(request: Request, limit: int) -> Any:
    """The request body as JSON: 413 over ``limit`` bytes, 422 when empty or malformed."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise invalid(f"bad Content-Length {brief(declared, 40)}") from None
        if size > limit:
            raise too_large(f"request body of {size:,} bytes; this server takes at most {limit:,}")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(f"request body over this server's limit of {limit:,} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGoneError("the client closed the connection") from None
    raw = b"".join(chunks)
    if not raw.strip():
        raise invalid("empty body: expected a JSON object", code="malformed_json")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise invalid(
            f"malformed JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            code="malformed_json",
        ) from None
    except (UnicodeDecodeError, RecursionError) as exc:
        raise invalid(f"malformed JSON: {type(exc).__name__}", code="malformed_json") from None


def create_app(
    batcher: MicroBatcher,
    config: ServeConfig,
    *,
    token: str | None = None,
    metrics: ServeMetrics | None = None,
    backend: str = "hf",
) -> Any:
    """The ASGI app (FastAPI inside the metrics middleware) for a started batcher; its
    :class:`ServerState` is ``app.state.llamo`` (``begin_shutdown`` is the shutdown hook)."""
    check_bind(config.host, config.loopback, token)  # whoever builds the app, not just the CLI
    metrics = metrics or ServeMetrics()
    if batcher.on_batch is None:
        metrics.attach(batcher)
    state = ServerState(batcher, config, token, metrics, backend)
    metrics.model_info.labels(state.model_name, state.checksum).set(1)
    api = FastAPI(
        title="LLaMo",
        summary="molecule descriptions, properties, names and answers",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    api.state.llamo = state

    def authenticate(request: Request) -> None:
        if state.token is not None and not token_matches(
            request.headers.get("authorization"), state.token
        ):
            missing = not request.headers.get("authorization")
            raise ApiError(
                401,
                "missing_token" if missing else "invalid_token",
                "this server needs 'Authorization: Bearer <token>'"
                if missing
                else "the bearer token is not valid",
                headers={"WWW-Authenticate": 'Bearer realm="llamo"'},
            )

    protected = [Depends(authenticate)]

    @api.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @api.exception_handler(LlamoError)
    async def _llamo_error(request: Request, exc: LlamoError) -> Response:
        err = to_api_error(exc)
        if err.status >= 500 and err.code == "internal_error":
            logger.error("%s %s failed: %s", request.method, request.url.path, exc)
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = f"{request.method} {brief(request.url.path, 80)}: {exc.detail}"
        err = ApiError(exc.status_code, code, message, headers=dict(exc.headers or {}))
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("%s %s failed", request.method, request.url.path)
        err = ApiError(
            500, "internal_error", f"internal error ({type(exc).__name__}); see the server log"
        )
        return JSONResponse(err.body(), status_code=500)

    @api.post("/v1/annotate", dependencies=protected)
    async def annotate(request: Request) -> Response:
        state.check_accepting()
        body = await read_json(request, config.max_body_bytes)
        parsed = parse_annotate_request(body, config)
        ctx = RequestContext(config.request_timeout_s)
        result = await state.in_worker(request, ctx, lambda: run_annotate(state.pool, parsed, ctx))
        metrics.count_rows("annotate", row_statuses(result))
        return JSONResponse(result)

    @api.post("/v1/chat/completions", dependencies=protected)
    async def chat_completions(request: Request) -> Response:
        state.check_accepting()
        body = await read_json(request, config.max_body_bytes)
        model = batcher.model
        parsed = parse_chat_request(
            body, config, state.model_name, model.config.decode.max_new_tokens
        )
        ctx = RequestContext(config.request_timeout_s)
        answer = await state.in_worker(
            request, ctx, lambda: answer_chat(batcher, parsed, ctx, config.limits)
        )
        metrics.count_rows("chat_completions", {answer.row.status: 1})
        if answer.row.status != "ok":
            raise ApiError(
                400, answer.row.status, answer.row.error or answer.row.status, param="messages"
            )
        if parsed.stream:
            return StreamingResponse(
                chat_stream(answer, parsed, state.checksum), media_type="text/event-stream"
            )
        return JSONResponse(chat_response(answer, parsed, state.checksum))

    @api.get("/v1/models", dependencies=protected)
    async def models() -> Response:
        return JSONResponse(models_response(state.model_name, state.checksum, int(state.started)))

    @api.get("/v1/models/{model_id:path}", dependencies=protected)
    async def model(model_id: str) -> Response:
        if model_id != state.model_name:
            raise ApiError(
                404,
                "model_not_found",
                f"model {brief(model_id, 80)} is not served "
                f"here; this server serves {state.model_name!r}",
            )
        return JSONResponse(model_entry(state.model_name, state.checksum, int(state.started)))

    @api.get("/health")
    async def health() -> Response:
        body = {
            "status": "shutting_down" if state.draining else "ok",
            "model": state.model_name,
            "model_sha256": state.checksum,
            "backend": state.backend,
            # what a client (the KNIME Model Selector) checks its settings against
            "tasks": list(batcher.model.config.tasks),
            "retrieval": bool(batcher.model.config.retrieval.default),
            "queue_depth": batcher.queue_depth,
            "queued_rows": batcher.queued_rows,
            "running_rows": batcher.running_rows,
            "batches": batcher.batches,
            "uptime_s": round(time.time() - state.started, 1),
        }
        return JSONResponse(body, status_code=503 if state.draining else 200)

    @api.get("/metrics", dependencies=protected)
    async def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app = MetricsMiddleware(api, metrics)
    app.state = api.state  # type: ignore[attr-defined]
    return app
