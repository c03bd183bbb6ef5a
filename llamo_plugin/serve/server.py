"""uvicorn serving the app on a socket bound before the model loads, with a shutdown hook.

Graceful shutdown (SIGTERM, or Ctrl-C once; a second Ctrl-C forces uvicorn to quit at once):
uvicorn stops listening and closes idle connections; :class:`Server` first calls the app's
hook (:meth:`ServerState.begin_shutdown <llamo_plugin.serve.app.ServerState.begin_shutdown>`):
new requests get 503, queued and running work gets ``shutdown_grace_s`` to finish and is then
answered 503. uvicorn waits for every open request to be answered (up to the grace plus
:data:`RESPONSE_SLACK_S`), so no request is dropped without an answer.

:class:`BackgroundServer` runs the same server in a thread (tests, ``llamo bench --server``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from llamo_plugin.serve.batcher import MicroBatcher
from llamo_plugin.serve.config import ServeConfig
from llamo_plugin.serve.metrics import ServeMetrics

logger = logging.getLogger(__name__)

#: seconds uvicorn waits, beyond the grace, for the 503 answers to be written
RESPONSE_SLACK_S = 10.0


def make_batcher(
    open_pipeline: Callable[[], Any], config: ServeConfig, *, close_pipeline: bool = True
) -> MicroBatcher:
    """The micro-batcher of a server with ``config``'s batching settings (not started)."""
    return MicroBatcher(
        open_pipeline,
        max_rows=config.batch_rows,
        max_wait_s=config.batch_wait_ms / 1000,
        max_queued_rows=config.max_queued_rows,
        close_pipeline=close_pipeline,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: any free one), not yet listening (uvicorn
    listens once the app is ready). ``OSError`` if the address is taken or unknown."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def socket_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Server(uvicorn.Server):
    """uvicorn's server, calling ``on_shutdown`` when its graceful shutdown begins."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._on_shutdown()
        await super().shutdown(sockets=sockets)


def make_server(app: Any, config: ServeConfig, *, access_log: bool = False) -> Server:
    """A :class:`Server` for an app from :func:`~llamo_plugin.serve.app.create_app`."""
    uv_config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,  # our logging set-up (llamo's -v/-q) applies to uvicorn's loggers too
        access_log=access_log,
        timeout_graceful_shutdown=int(config.shutdown_grace_s + RESPONSE_SLACK_S),
    )
    return Server(uv_config, app.state.llamo.begin_shutdown)


class BackgroundServer:
    """A :class:`Server` in a thread of this process, on a loopback socket it binds itself."""

    def __init__(self, app: Any, config: ServeConfig) -> None:
        self.sock = bind_socket(config.host, config.port)
        self.url = socket_url(self.sock)
        self.server = make_server(app, config)
        self.batcher: MicroBatcher | None = None
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="llamo-serve", daemon=True
        )

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start (see the log)")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Graceful shutdown, as on SIGTERM; returns when the server has finished."""
        self.server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@contextlib.contextmanager
def background_server(
    open_pipeline: Callable[[], Any],
    config: ServeConfig,
    *,
    token: str | None = None,
    close_pipeline: bool = True,
) -> Iterator[BackgroundServer]:
    """A whole server (batcher, app, uvicorn) in background threads of this process, e.g.
    ``with background_server(lambda: pipe, ServeConfig(port=0), close_pipeline=False) as s:``
    then ``s.url``; stopped gracefully on exit. ``s.batcher`` is its batcher."""
    from llamo_plugin.serve.app import create_app

    metrics = ServeMetrics()
    batcher = make_batcher(open_pipeline, config, close_pipeline=close_pipeline)
    metrics.attach(batcher)
    batcher.start()
    try:
        app = create_app(batcher, config, token=token, metrics=metrics)
        with BackgroundServer(app, config) as server:
            server.batcher = batcher
            yield server
    finally:
        batcher.close()
