"""Health and metrics over HTTP: /healthz, /readyz and /metrics for Prometheus."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class HealthProbes:
    """What the endpoints ask the running service."""

    alive: Callable[[], bool]
    """The consumer and delivery loops still run."""
    ready: Callable[[], Awaitable[dict[str, object]]]
    """Checks the store and Kafka; raises when one of them does not answer."""
    metrics: Callable[[], Awaitable[str]]


def create_health_app(probes: HealthProbes) -> FastAPI:
    app = FastAPI(title="modelbus delivery", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    def healthz() -> Response:
        """Liveness: both loops run; a dead loop means the process should be restarted."""
        if probes.alive():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "failed"}, status_code=503)

    @app.get("/readyz")
    async def readyz() -> Response:
        """Readiness: the job store answers and the consumer has joined Kafka."""
        try:
            details = await probes.ready()
        except Exception as error:
            return JSONResponse(
                {"status": "unready", "reason": f"{type(error).__name__}: {error}"},
                status_code=503,
            )
        return JSONResponse({"status": "ready", **details})

    @app.get("/metrics")
    async def metrics() -> Response:
        return PlainTextResponse(await probes.metrics(), media_type=PROMETHEUS_TEXT)

    return app
