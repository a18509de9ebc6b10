"""Composition root of the gateway: settings -> job store, registry, Kafka -> FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from services.gateway.adapters.job_store import ThreadedJobStore
from services.gateway.adapters.model_events import signature_invalidator
from services.gateway.adapters.publisher import BackgroundPublisher
from services.gateway.adapters.rate_limits import DatabaseRateLimits, ProcessRateLimits
from services.gateway.adapters.registry import RegistryCatalog
from services.gateway.entrypoints.dependencies import Container
from services.gateway.entrypoints.routes import router
from services.gateway.entrypoints.tracing import ServerSpans
from services.gateway.service_layer.feedback import FeedbackIntake
from services.gateway.service_layer.handlers import PredictionGateway
from services.gateway.service_layer.ports import RateLimits
from services.gateway.settings import GatewaySettings
from shared.clients.authentication import RegistryAuthenticator
from shared.db import make_engine
from shared.http_api import BodySizeLimit, error_body, install_error_handlers
from shared.jobstore.store import migrate
from shared.kafka.publisher import Publisher
from shared.rate_limit import RateLimiter
from shared.telemetry import configure_tracing
from shared.topics import MODEL_EVENTS


def _registry_http(settings: GatewaySettings, *, api_key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.AsyncClient(
        base_url=settings.registry_url,
        headers=headers,
        timeout=settings.registry_timeout_seconds,
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
    )


def _rate_limits(settings: GatewaySettings, engine: Engine) -> RateLimits:
    if settings.rate_limit_scope == "database":
        return DatabaseRateLimits(
            engine, rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst
        )
    return ProcessRateLimits(
        RateLimiter(
            rate=settings.rate_limit_per_second,
            burst=settings.rate_limit_burst,
            max_keys=settings.rate_limit_max_keys,
        )
    )


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway's ASGI app; nothing is created before this is called.

    Migrates the job store now; connects to the registry and Kafka when the app starts.
    """
    settings = settings or GatewaySettings()
    if settings.registry_api_key is None:
        raise ValueError(
            "MODELBUS_REGISTRY_API_KEY is required: the gateway reads signatures and "
            "deployments from the registry with it (a reader key is enough)"
        )
    registry_key = settings.registry_api_key.get_secret_value()
    configure_tracing("gateway", settings)
    migrate(settings.jobs_database_url)
    engine = make_engine(settings.jobs_database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        catalog_http = _registry_http(settings, api_key=registry_key)
        auth_http = _registry_http(settings, api_key=None)
        catalog = RegistryCatalog(catalog_http, ttl=settings.signature_cache_seconds)
        publisher = BackgroundPublisher(lambda: Publisher.for_service(settings, source="gateway"))
        listener = signature_invalidator(
            bootstrap=settings.kafka_bootstrap,
            topic=settings.topic(MODEL_EVENTS.name),
            client_id=f"{settings.kafka_client_id}-gateway-model-events",
            invalidate=catalog.invalidate,
            invalidate_all=catalog.invalidate_all,
            security=settings.kafka_security,
        )
        jobs = ThreadedJobStore(engine)
        app.state.container = Container(
            settings=settings,
            gateway=PredictionGateway(
                catalog=catalog,
                jobs=jobs,
                publisher=publisher,
                range_tolerance=settings.range_tolerance,
                republish_pending_after=timedelta(seconds=settings.republish_pending_after_seconds),
            ),
            feedback=FeedbackIntake(catalog=catalog, jobs=jobs, publisher=publisher),
            authenticator=RegistryAuthenticator(
                auth_http,
                ttl=settings.auth_cache_seconds,
                negative_ttl=settings.auth_negative_cache_seconds,
            ),
            catalog=catalog,
            limiter=_rate_limits(settings, engine),
            auth_failures=RateLimiter(
                rate=settings.auth_failures_per_second, burst=settings.auth_failures_burst
            ),
            jobs=jobs,
            publisher=publisher,
            listener=listener,
        )
        publisher.start()
        listener.start()
        try:
            yield
        finally:
            await listener.stop()
            await publisher.stop()
            await catalog_http.aclose()
            await auth_http.aclose()
            engine.dispose()

    app = FastAPI(
        title="modelbus gateway",
        version="1.0.0",
        description=(
            "Queue prediction jobs (202 + webhook or polling), read their results, send "
            "feedback. Authenticate with a registry API key of any role (client upwards): "
            "'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
        ),
        lifespan=lifespan,
    )
    install_error_handlers(app, service="gateway")
    app.include_router(router)
    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, setting="MODELBUS_MAX_BODY_BYTES"
    )
    app.add_middleware(ServerSpans)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """Readiness: connected to Kafka and the job store answers.

        `model_events` says whether deployment changes reach the cache at once
        (`listening`) or only through its TTL; it does not gate readiness.
        """
        container: Container = app.state.container
        problems: list[str] = []
        if not container.publisher.ready:
            problems.append("not connected to Kafka yet")
        try:
            await container.jobs.ping()
        except Exception as error:
            problems.append(f"job store unreachable: {type(error).__name__}")
        checks: dict[str, Any] = {
            "kafka": container.publisher.ready,
            "job_store": not any(p.startswith("job store") for p in problems),
            "model_events": container.listener.state,
        }
        if problems:
            return JSONResponse(
                error_body("not_ready", "; ".join(problems), checks), status_code=503
            )
        return JSONResponse({"status": "ready"} | checks)

    return app
