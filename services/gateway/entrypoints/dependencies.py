"""FastAPI dependencies: the wired-up gateway and the authenticated, rate-limited caller."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from services.gateway.adapters.job_store import ThreadedJobStore
from services.gateway.adapters.publisher import BackgroundPublisher
from services.gateway.adapters.registry import RegistryCatalog
from services.gateway.service_layer.errors import RateLimited, Unauthorized, Unavailable
from services.gateway.service_layer.feedback import FeedbackIntake
from services.gateway.service_layer.handlers import PredictionGateway
from services.gateway.service_layer.ports import RateLimits
from services.gateway.settings import GatewaySettings
from shared.clients.authentication import (
    Caller,
    RegistryAuthenticator,
    RegistryUnavailable,
    UnknownKey,
)
from shared.kafka.model_events import ModelEventsFollower
from shared.rate_limit import RateLimiter, failed_authentications_refusal


@dataclass
class Container:
    """Everything the request handlers need, built once by the composition root."""

    settings: GatewaySettings
    gateway: PredictionGateway
    feedback: FeedbackIntake
    authenticator: RegistryAuthenticator
    catalog: RegistryCatalog
    limiter: RateLimits
    auth_failures: RateLimiter
    """Failed authentications per client address (process-local)."""
    jobs: ThreadedJobStore
    publisher: BackgroundPublisher
    listener: ModelEventsFollower


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(_container)]


def api_key_from(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key from `X-API-Key`, else from `Authorization: Bearer`, as the registry reads it."""
    if x_api_key:
        return x_api_key.strip() or None
    if authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return None


async def _authenticate(container: Container, address: str, key: str | None) -> Caller:
    """The key's caller; an address that failed too often gets 429 before the registry is
    asked, so unknown keys cannot turn into registry load."""
    failures = container.auth_failures
    blocked = failures.peek(address, time.monotonic())
    if not blocked.allowed:
        raise failed_authentications_refusal(RateLimited, address, blocked)
    try:
        if key is None:
            raise Unauthorized(
                "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
            )
        return await container.authenticator.authenticate(key)
    except UnknownKey as unknown:
        failures.check(address, time.monotonic())
        raise Unauthorized(str(unknown)) from None
    except RegistryUnavailable as down:
        raise Unavailable(str(down)) from None
    except Unauthorized:
        failures.check(address, time.monotonic())
        raise


async def _caller(
    request: Request,
    container: ContainerDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Caller:
    address = request.client.host if request.client is not None else "unknown"
    caller = await _authenticate(container, address, api_key_from(authorization, x_api_key))
    decision = await container.limiter.check(caller.key_hash)
    if not decision.allowed:
        raise RateLimited(
            f"rate limit of {container.limiter.rate:g} requests/s (burst "
            f"{container.limiter.burst}) exceeded for key {caller.name!r}; "
            f"retry in {decision.retry_after_header} s",
            details={"retry_after_seconds": decision.retry_after},
            headers={"Retry-After": decision.retry_after_header},
        )
    return caller


CallerDep = Annotated[Caller, Depends(_caller)]
