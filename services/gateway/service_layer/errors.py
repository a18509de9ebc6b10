"""Errors the gateway's use cases raise; the HTTP layer maps each to one status and body."""

from __future__ import annotations

from shared.contracts import ErrorCode
from shared.http_api import ServiceError


class GatewayError(ServiceError):
    """Base: a request the gateway refuses, with a code and a message for the caller."""


class Unauthorized(GatewayError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(GatewayError):
    status_code = 403
    code = "forbidden"


class RateLimited(GatewayError):
    status_code = 429
    code = "rate_limited"


class UnknownModel(GatewayError):
    status_code = 404
    code = ErrorCode.UNKNOWN_MODEL


class UnknownVersion(GatewayError):
    status_code = 404
    code = ErrorCode.UNKNOWN_VERSION


class UnknownJob(GatewayError):
    status_code = 404
    code = "unknown_job"


class NoDeployment(GatewayError):
    status_code = 409
    code = ErrorCode.NO_DEPLOYMENT


class RequestIdConflict(GatewayError):
    status_code = 409
    code = "request_id_conflict"


class InvalidInput(GatewayError):
    status_code = 422
    code = ErrorCode.INVALID_INPUT


class Unavailable(GatewayError):
    """A dependency (registry, Kafka, job store) did not answer; the caller may retry."""

    status_code = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after_seconds: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_seconds)})
