"""/healthz, /readyz and /metrics of a Kafka service, served by uvicorn inside its event loop."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import time
from collections.abc import Awaitable, Iterator
from typing import Any, Protocol

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
START_TIMEOUT_SECONDS = 10.0
Probed = tuple[bool, dict[str, Any]]
"""Whether the check passed, and the details to show."""


class ServiceProbe(Protocol):
    """What the health endpoints ask the service; readiness may await its dependencies."""

    def liveness(self) -> tuple[bool, dict[str, Any]]: ...
    def readiness(self) -> Probed | Awaitable[Probed]: ...
    def metrics_text(self) -> str | Awaitable[str]: ...


def create_health_app(probe: ServiceProbe, *, service: str) -> FastAPI:
    """The endpoints are async on purpose: they then run on the service's event loop, never
    in a thread pool, so they read its counters while nothing mutates them."""
    app = FastAPI(title=f"modelbus {service}", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """Liveness: the service's loops have not died; if they have, restart the process."""
        alive, details = probe.liveness()
        return JSONResponse(details, status_code=200 if alive else 503)

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Readiness: the service's clients are started and its dependencies answer."""
        probed = probe.readiness()
        ready, details = await probed if inspect.isawaitable(probed) else probed
        return JSONResponse(details, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        """Prometheus text format."""
        text = probe.metrics_text()
        text = await text if inspect.isawaitable(text) else text
        return PlainTextResponse(text, media_type=PROMETHEUS_CONTENT_TYPE)

    return app


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the service's event loop: the service, not uvicorn, owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HealthServer:
    """Serves the health app on host:port (port 0 picks a free one, see `port`)."""

    def __init__(self, app: FastAPI, *, host: str, port: int) -> None:
        self._app = app
        self._host = host
        self._requested_port = port
        self._server: _EmbeddedServer | None = None
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self) -> None:
        """Listen on a socket bound here, so a taken port is a clear error of ours (uvicorn
        would call sys.exit inside the event loop instead)."""
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._requested_port))
        except OSError as error:
            sock.close()
            raise RuntimeError(
                f"the health endpoint cannot listen on {self._host}:{self._requested_port}: {error}"
            ) from None
        sock.set_inheritable(False)
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self._app,
            log_config=None,  # uvicorn's loggers propagate to the service's JSON logs
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="health-http")
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if self._task.done() or time.monotonic() > deadline:
                await self.stop()
                raise RuntimeError(
                    f"the health endpoint could not listen on {self._host}:{self.port}"
                )
            await asyncio.sleep(0.01)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
