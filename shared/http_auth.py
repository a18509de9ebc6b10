"""API keys on a service's HTTP routes, checked with the registry (cached for a while).

A service installs its authenticator as `app.state.authenticator`; a route takes
`CallerDep` and calls `require` with the role it needs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from shared.clients.authentication import (
    Caller,
    RegistryAuthenticator,
    RegistryUnavailable,
    UnknownKey,
)
from shared.http_api import ServiceError
from shared.roles import Role


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    status_code = 403
    code = "forbidden"


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class Unavailable(ServiceError):
    status_code = 503
    code = "unavailable"


def _api_key(
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> str:
    key = x_api_key
    if key is None and authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        key = credentials.strip() if scheme.lower() == "bearer" else None
    if not key:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    return key


ApiKeyDep = Annotated[str, Depends(_api_key)]


async def _caller(request: Request, key: ApiKeyDep) -> Caller:
    authenticator: RegistryAuthenticator = request.app.state.authenticator
    try:
        return await authenticator.authenticate(key)
    except UnknownKey as unknown:
        raise Unauthorized(str(unknown)) from None
    except RegistryUnavailable as down:
        raise Unavailable(str(down)) from None


CallerDep = Annotated[Caller, Depends(_caller)]


def require(caller: Caller, role: Role, doing: str) -> None:
    if not caller.has_role(role):
        raise Forbidden(
            f"{doing} needs the {role.value} role; key {caller.name!r} is {caller.role}"
        )
