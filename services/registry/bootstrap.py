"""Composition root of the registry: settings -> database, store, relay -> FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from sqlalchemy import text
from sqlmodel import Session

from services.registry.adapters.api_keys import ensure_key
from services.registry.adapters.blob_store import BlobStore
from services.registry.adapters.database import make_engine, migrate
from services.registry.adapters.outbox_relay import OutboxRelay
from services.registry.entrypoints.dependencies import Container
from services.registry.entrypoints.routes import router
from services.registry.service_layer.versions import ArtifactInspector
from services.registry.settings import RegistrySettings
from shared.artifact_archive import ArchiveLimits
from shared.artifact_inspection import inspect_artifact_isolated
from shared.http_api import BodySizeLimit, install_error_handlers
from shared.jobstore.store import migrate as migrate_jobstore
from shared.jobstore.webhook_secrets import WebhookSecretStore
from shared.kafka.publisher import Publisher
from shared.rate_limit import RateLimiter
from shared.roles import Role
from shared.sandbox import SandboxLimits
from shared.telemetry import configure_tracing

BOOTSTRAP_ADMIN = "bootstrap-admin"


def build_container(settings: RegistrySettings) -> Container:
    """Migrate the database, ensure the bootstrap admin key and wire the adapters."""
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    if settings.admin_api_key is not None:
        with Session(engine) as session:
            ensure_key(
                session,
                name=BOOTSTRAP_ADMIN,
                role=Role.ADMIN,
                key=settings.admin_api_key.get_secret_value(),
            )
    relay = None
    if settings.publish_events:
        relay = OutboxRelay(
            engine,
            lambda: Publisher.for_service(settings, source="registry"),
            poll_seconds=settings.outbox_poll_seconds,
        )
    return Container(
        settings=settings,
        engine=engine,
        store=BlobStore(settings.artifact_dir),
        relay=relay,
        inspect_artifact=artifact_inspector(settings),
        auth_failures=RateLimiter(
            rate=settings.auth_failures_per_second, burst=settings.auth_failures_burst
        ),
        webhook_secrets=_webhook_secrets(settings),
    )


def artifact_inspector(settings: RegistrySettings) -> ArtifactInspector:
    """Uploads are read in a child process under the settings' limits."""
    return partial(
        inspect_artifact_isolated,
        limits=SandboxLimits(
            memory_bytes=settings.inspect_memory_bytes,
            cpu_seconds=settings.inspect_cpu_seconds,
            wall_seconds=settings.inspect_wall_seconds,
        ),
        archive_limits=ArchiveLimits(max_uncompressed_bytes=settings.inspect_max_unpacked_bytes),
    )


def _webhook_secrets(settings: RegistrySettings) -> WebhookSecretStore | None:
    """Keys' webhook secrets live in the job store, which the delivery service reads."""
    if settings.jobs_database_url is None:
        return None
    migrate_jobstore(settings.jobs_database_url)
    return WebhookSecretStore(make_engine(settings.jobs_database_url))


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    """The registry's ASGI app; nothing is created before this is called."""
    settings = settings or RegistrySettings()
    configure_tracing("registry", settings)
    container = build_container(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if container.relay is not None:
            container.relay.start()
        try:
            yield
        finally:
            if container.relay is not None:
                await container.relay.stop()
            container.engine.dispose()
            if container.webhook_secrets is not None:
                container.webhook_secrets.engine.dispose()

    app = FastAPI(
        title="modelbus registry",
        version="1.0.0",
        description=(
            "Versions model, data and code together; approvals, deployments, rollback, audit. "
            "Authenticate with 'Authorization: Bearer <API key>'."
        ),
        lifespan=lifespan,
    )
    app.state.container = container
    install_error_handlers(app, service="registry")
    app.include_router(router)
    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_upload_bytes, setting="MODELBUS_MAX_UPLOAD_BYTES"
    )

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> dict[str, object]:
        """Readiness: the database answers; shows how many events still wait for Kafka."""
        with Session(container.engine) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        pending = container.relay.pending_count() if container.relay else 0
        return {"status": "ready", "events_pending": pending}

    return app
