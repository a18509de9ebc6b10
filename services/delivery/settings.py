"""Delivery settings: where job results live, how webhooks are signed, retried and guarded."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from services.delivery.domain.callback_policy import Allowlist
from shared.settings import ModelbusSettings

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


class DeliverySettings(ModelbusSettings):
    """`MODELBUS_*` settings of the webhook delivery service."""

    jobs_database_url: str = "sqlite:///.cache/jobs/jobs.db"
    """SQLAlchemy URL of the job-result store the gateway reads; PostgreSQL in production."""

    webhook_secret: SecretStr
    """Default Standard Webhooks signing secret, `whsec_` + base64 of 24 to 64 random
    bytes. It signs only webhooks of jobs without a subscriber secret: jobs published
    straight to Kafka, and jobs of keys issued without one. A key's own secret (issued
    with the key, rotatable, kept in the job store) signs the jobs it submits."""

    webhook_secret_cache_seconds: float = Field(default=10.0, ge=0, le=3600)
    """How long a subscriber's secrets are reused before the job store is read again: a
    rotation is signed with within this time (the registry's overlap is far longer)."""

    callback_seal_key: SecretStr | None = Field(default=None, min_length=32)
    """Key the inference workers seal callbacks with (MODELBUS_CALLBACK_SEAL_KEY, the same
    value). A callback on `predictions` is delivered only if it is the one the gateway
    recorded for the job or carries a valid seal; unset, only gateway callbacks are."""

    webhook_allowlist: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Host names (`hooks.internal`, `*.corp.example`) and IPs/CIDRs (`127.0.0.1`,
    `10.20.0.0/16`) that may receive webhooks although they are private; comma-separated."""

    max_attempts: int = Field(default=8, ge=1, le=100)
    """Attempts per webhook before the delivery is dead and dead-lettered."""

    backoff_base_seconds: float = Field(default=5.0, gt=0)
    """Longest wait after the first failure; it doubles after each further failure."""

    backoff_max_seconds: float = Field(default=1800.0, gt=0)
    """Cap on the wait between attempts (the actual wait is random up to the ceiling)."""

    request_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """Deadline of one whole attempt: DNS, connect, send and the receiver's answer."""

    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    """Deadline for opening the TCP (and TLS) connection within an attempt."""

    lease_seconds: float = Field(default=60.0, gt=0)
    """How long a claimed webhook stays hidden from other replicas; after a crash it is
    retried when the lease runs out. Must exceed twice the request timeout."""

    max_concurrency: int = Field(default=64, ge=1, le=10_000)
    """Webhooks being sent at once per replica (and its most open connections); as many
    again may wait in memory, claimed, for a free slot."""

    consumer_group: str = Field(default="modelbus-delivery", min_length=1)
    """Kafka consumer group reading `predictions`; replicas share its partitions."""

    consumer_offset_reset: Literal["earliest", "latest"] = "earliest"
    """Where a new consumer group starts reading `predictions`: `earliest` loses nothing."""

    consume_max_records: int = Field(default=500, ge=1)
    """Most `predictions` records recorded per batch (one database transaction each)."""

    poll_interval_seconds: float = Field(default=1.0, gt=0)
    """How often the delivery loop looks for due retries when nothing woke it earlier."""

    delivery_health_host: str = "127.0.0.1"
    """Interface the health and metrics endpoint binds to."""

    delivery_health_port: int | None = Field(default=8003, ge=0, le=65535)
    """Port of /healthz, /readyz and /metrics; 0 picks a free one, None runs no endpoint."""

    @field_validator("webhook_allowlist", mode="before")
    @classmethod
    def _split_allowlist(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [entry.strip() for entry in text.split(",") if entry.strip()]
        return value

    @field_validator("webhook_allowlist")
    @classmethod
    def _check_allowlist(cls, value: list[str]) -> list[str]:
        Allowlist.parse(value)  # raises ValueError naming the bad entry
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_secret(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if not text.startswith(SECRET_PREFIX):
            raise ValueError(f"MODELBUS_WEBHOOK_SECRET must look like {SECRET_PREFIX}<base64>")
        try:
            key = base64.b64decode(text.removeprefix(SECRET_PREFIX), validate=True)
        except binascii.Error:
            raise ValueError("MODELBUS_WEBHOOK_SECRET is not valid base64 after whsec_") from None
        if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
            raise ValueError(
                f"MODELBUS_WEBHOOK_SECRET must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} "
                f"random bytes; it holds {len(key)}"
            )
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        if self.backoff_max_seconds < self.backoff_base_seconds:
            raise ValueError("backoff_max_seconds must be at least backoff_base_seconds")
        if self.connect_timeout_seconds > self.request_timeout_seconds:
            raise ValueError("connect_timeout_seconds cannot exceed request_timeout_seconds")
        if self.lease_seconds <= 2 * self.request_timeout_seconds:
            raise ValueError(
                "lease_seconds must exceed twice request_timeout_seconds, or a slow attempt "
                "could be claimed and sent again by another replica"
            )
        if self.environment == "production" and self.callback_seal_key is None:
            raise ValueError(
                "production needs MODELBUS_CALLBACK_SEAL_KEY (shared with the inference "
                "workers), or callbacks of requests published straight to Kafka are dropped"
            )
        if self.environment == "production" and self.jobs_database_url.startswith("sqlite"):
            raise ValueError(
                "production needs MODELBUS_JOBS_DATABASE_URL to point at PostgreSQL "
                "(SQLite cannot share the job store between replicas and the gateway)"
            )
        return self

    @property
    def allowlist(self) -> Allowlist:
        return Allowlist.parse(self.webhook_allowlist)
