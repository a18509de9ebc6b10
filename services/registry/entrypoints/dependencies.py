"""FastAPI dependencies: the database session, the blob store and the authenticated caller."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Query, Request, status
from sqlalchemy import Engine
from sqlmodel import Session

from services.registry.adapters.api_keys import find_active_key
from services.registry.adapters.blob_store import BlobStore
from services.registry.adapters.outbox_relay import OutboxRelay
from services.registry.domain.roles import Role
from services.registry.service_layer.context import Actor
from services.registry.service_layer.versions import ArtifactInspector
from services.registry.settings import RegistrySettings


@dataclass
class Container:
    """Everything the request handlers need, built once by the composition root."""

    settings: RegistrySettings
    engine: Engine
    store: BlobStore
    relay: OutboxRelay | None
    inspect_artifact: ArtifactInspector


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


def _actor(
    session: SessionDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Actor:
    token = x_api_key
    if token is None and authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            token = credentials.strip()
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = find_active_key(session, token)
    if key is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="unknown or revoked API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Actor(name=key.name, role=Role(key.role))


ActorDep = Annotated[Actor, Depends(_actor)]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Offset = Annotated[int, Query(ge=0, description="Rows to skip.")]
