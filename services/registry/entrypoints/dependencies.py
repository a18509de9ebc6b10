"""FastAPI dependencies: the database session, the blob store and the authenticated caller."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Query, Request, status
from sqlalchemy import Engine
from sqlmodel import Session

from services.registry.adapters.api_keys import find_active_key
from services.registry.adapters.blob_store import BlobStore
from services.registry.adapters.outbox_relay import OutboxRelay
from services.registry.service_layer.context import Actor
from services.registry.service_layer.errors import RateLimited
from services.registry.service_layer.versions import ArtifactInspector
from services.registry.settings import RegistrySettings
from shared.jobstore.webhook_secrets import WebhookSecretStore
from shared.rate_limit import RateLimiter, failed_authentications_refusal
from shared.roles import Role


@dataclass
class Container:
    """Everything the request handlers need, built once by the composition root."""

    settings: RegistrySettings
    engine: Engine
    store: BlobStore
    relay: OutboxRelay | None
    inspect_artifact: ArtifactInspector
    auth_failures: RateLimiter
    """Failed authentications per client address: past the burst, 429 before any lookup."""
    webhook_secrets: WebhookSecretStore | None = None


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(_container)]


def _session(container: ContainerDep) -> Iterator[Session]:
    with Session(container.engine) as session:
        yield session
    if container.relay is not None:
        container.relay.notify()


SessionDep = Annotated[Session, Depends(_session)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"}
    )


def _actor(
    request: Request,
    container: ContainerDep,
    session: SessionDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Actor:
    token = x_api_key
    if token is None and authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            token = credentials.strip()
    address = request.client.host if request.client is not None else "unknown"
    blocked = container.auth_failures.peek(address, time.monotonic())
    if not blocked.allowed:
        raise failed_authentications_refusal(RateLimited, address, blocked)
    if not token:
        container.auth_failures.check(address, time.monotonic())
        raise _unauthorized(
            "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
        )
    key = find_active_key(session, token)
    if key is None:
        container.auth_failures.check(address, time.monotonic())
        raise _unauthorized("unknown or revoked API key, or one past its expiry")
    return Actor(name=key.name, role=Role(key.role), owner=key.owner)


def _reader(actor: Annotated[Actor, Depends(_actor)]) -> Actor:
    """Reading the registry (models, artifacts, training data) needs `reader` or above."""
    actor.require(Role.READER, "reading the registry")
    return actor


ActorDep = Annotated[Actor, Depends(_actor)]
ReaderDep = Annotated[Actor, Depends(_reader)]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Offset = Annotated[int, Query(ge=0, description="Rows to skip.")]
