"""/healthz, /readyz and /metrics of a worker, served by uvicorn inside the worker's loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any, Protocol

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class WorkerProbe(Protocol):
    """What the health endpoint asks the worker."""

    def liveness(self) -> tuple[bool, dict[str, Any]]: ...
    def readiness(self) -> tuple[bool, dict[str, Any]]: ...
    def metrics_text(self) -> str: ...


def create_health_app(probe: WorkerProbe) -> FastAPI:
    """The endpoints are async on purpose: they then run on the worker's event loop, never
    in a thread pool, so they read the worker's counters while nothing mutates them."""
    app = FastAPI(title="modelbus inference worker", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """Liveness: the consume loop has not died."""
        alive, details = probe.liveness()
        return JSONResponse(details, status_code=200 if alive else 503)

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Readiness: consumer started with partitions assigned, deployments fetched."""
        ready, details = probe.readiness()
        return JSONResponse(details, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        """Prometheus text format."""
        return PlainTextResponse(probe.metrics_text(), media_type=PROMETHEUS_CONTENT_TYPE)

    return app


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the worker's event loop: the worker, not uvicorn, owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HealthServer:
    """Serves the health app on host:port (port 0 picks a free one, see `port`)."""

    def __init__(self, probe: WorkerProbe, *, host: str, port: int) -> None:
        self._app = create_health_app(probe)
        self._host = host
        self._requested_port = port
        self._server: _EmbeddedServer | None = None
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._requested_port))
        sock.set_inheritable(False)
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self._app,
            log_config=None,  # uvicorn's loggers propagate to the worker's JSON logs
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="health-http")
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await self._task
        if self._socket is not None:
            self._socket.close()
