"""Gateway settings: where the registry and the job store are, and how much a caller may send."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from shared.settings import ModelbusSettings


class GatewaySettings(ModelbusSettings):
    """`MODELBUS_*` settings of the HTTP gateway."""

    registry_url: str = "http://127.0.0.1:8000"
    """Base URL of the model registry: signatures, deployments and caller authentication."""

    registry_api_key: SecretStr | None = None
    """The gateway's own registry key (reader role is enough) for signatures and deployments."""

    registry_timeout_seconds: float = Field(default=5.0, gt=0)
    """How long one registry call may take before the caller gets 503."""

    jobs_database_url: str = "sqlite:///.cache/jobs/jobs.db"
    """SQLAlchemy URL of the job-result store shared with the delivery service."""

    gateway_host: str = "127.0.0.1"
    """Interface the HTTP server binds to."""

    gateway_port: int = Field(default=8080, ge=1, le=65535)
    """Port the HTTP server listens on."""

    rate_limit_per_second: float = Field(default=50.0, gt=0)
    """Sustained requests per second each API key may make (per process or in total, see
    rate_limit_scope)."""

    rate_limit_scope: Literal["process", "database"] = "process"
    """Where the buckets live: `process` (free, but N replicas let a key through at N times
    the rate) or `database` (the job store's database, one bucket per key for every
    replica using it; a round trip per request)."""

    rate_limit_burst: int = Field(default=100, ge=1)
    """Requests a key may make at once before the sustained rate applies."""

    rate_limit_max_keys: int = Field(default=100_000, ge=1)
    """Most API keys whose buckets one process tracks; idle full buckets are dropped first
    (rate_limit_scope=process)."""

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest accepted request body; bigger ones get 413."""

    auth_cache_seconds: float = Field(default=60.0, ge=0)
    """How long a key the registry accepted is trusted without asking again (revocation lag)."""

    auth_negative_cache_seconds: float = Field(default=5.0, ge=0)
    """How long a key the registry refused is refused without asking again."""

    auth_failures_per_second: float = Field(default=1.0, gt=0)
    """Sustained failed authentications (missing, unknown or revoked keys) one client
    address may make; past the burst it gets 429 before the registry is asked (per process)."""

    auth_failures_burst: int = Field(default=20, ge=1)
    """Failed authentications one client address may make at once."""

    signature_cache_seconds: float = Field(default=300.0, ge=0)
    """Safety-net lifetime of cached deployments and signatures; `model-events` refresh sooner."""

    range_tolerance: float = Field(default=0.1, ge=0.0)
    """Share of a feature's training range a value may lie outside it; the same variable and
    default as the inference workers, so what the gateway accepts they accept too."""

    republish_pending_after_seconds: float = Field(default=30.0, ge=0)
    """A retried submission of a job still pending after this long publishes its request
    again: the first attempt may have died between recording and publishing. A duplicate
    request is harmless (the first answer recorded wins), a lost one is not."""

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        if self.environment == "production" and self.jobs_database_url.startswith("sqlite"):
            raise ValueError("production needs MODELBUS_JOBS_DATABASE_URL to point at PostgreSQL")
        return self
