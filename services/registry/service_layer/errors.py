"""Errors the registry's use cases raise; the HTTP layer maps each to one status code."""

from __future__ import annotations

from shared.http_api import ServiceError


class RegistryError(ServiceError):
    """Base: a request the registry refuses, with a code and a message for the caller."""


class NotFound(RegistryError):
    status_code = 404
    code = "not_found"


class Conflict(RegistryError):
    status_code = 409
    code = "conflict"


class Forbidden(RegistryError):
    status_code = 403
    code = "forbidden"


class RateLimited(RegistryError):
    status_code = 429
    code = "rate_limited"


class Unavailable(RegistryError):
    status_code = 503
    code = "unavailable"


class InvalidInput(RegistryError):
    status_code = 422
    code = "invalid_input"


class IntegrityFailure(RegistryError):
    """Stored bytes no longer match their hash: never serve them."""

    status_code = 500
    code = "integrity_failure"
