"""Tables of the job-result store (own metadata, own migrations, own database URL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, MetaData
from sqlmodel import Field, SQLModel

from shared.contracts.base import utc_now

jobstore_metadata = MetaData()


class JobStoreTable(SQLModel):
    """Base of job-store tables: a metadata of their own, apart from the registry's."""

    metadata = jobstore_metadata


def _timestamp(nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default_factory=utc_now if not nullable else None,
        sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index),
    )


class Job(JobStoreTable, table=True):
    """One prediction request: its result and the state of its webhook delivery."""

    __tablename__ = "jobs"

    request_id: str = Field(primary_key=True, max_length=128)
    model: str = Field(max_length=128)
    status: str = Field(default="pending", max_length=16)  # pending | done | failed
    prediction: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    callback_url: str | None = Field(default=None, max_length=2048)
    delivery_status: str = Field(default="none", max_length=16)
    """none (no callback) | pending | retrying | delivered | dead"""
    delivery_attempts: int = 0
    """Webhook attempts made; also the version a delivery replica's update must match."""
    next_attempt_at: datetime | None = _timestamp(nullable=True, index=True)
    """When the delivery service must next act: send (pending/retrying), publish the
    dead-letter record (dead), or null when nothing is left to do. A claim bumps it by a
    lease, so a crashed replica's work comes due again."""
    last_error: str | None = Field(default=None, max_length=2000)
    dead_reason: str | None = Field(default=None, max_length=16)
    """Why a dead delivery is dead: exhausted | gone | refused (the dead-letter code)."""
    traceparent: str | None = Field(default=None, max_length=64)
    """W3C trace context of the prediction, so the webhook continues the request's trace."""
    owner: str | None = Field(default=None, max_length=128)
    """Name of the API key that submitted the job through the gateway; only that key (or
    an admin) may read it there. None for jobs published straight to Kafka."""
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class DeliveryAttempt(JobStoreTable, table=True):
    """Every webhook attempt, so the job status can show what happened."""

    __tablename__ = "delivery_attempts"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(foreign_key="jobs.request_id", index=True, max_length=128)
    attempt: int
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=2000)
    duration_ms: float = 0.0
    attempted_at: datetime = _timestamp()


class RateLimitBucket(JobStoreTable, table=True):
    """A gateway rate-limit bucket shared by every replica (MODELBUS_RATE_LIMIT_SCOPE=database)."""

    __tablename__ = "rate_limit_buckets"

    key: str = Field(primary_key=True, max_length=128)
    """The API key's hash (never the key itself)."""
    tokens: float
    updated: float
    """Seconds since the epoch (wall clock: replicas on different hosts share it)."""
    version: int = 0
    """Bumped on every write: a replica writes only over the state it read."""


class WebhookSecret(JobStoreTable, table=True):
    """A subscriber's Standard Webhooks secrets: the current one, and during a rotation the
    previous one until its overlap ends. Symmetric, so stored as is for delivery to sign."""

    __tablename__ = "webhook_secrets"

    subscriber: str = Field(primary_key=True, max_length=128)
    """Name of the API key whose jobs these secrets sign (the jobs' `owner`)."""
    secret: str = Field(max_length=128)
    previous_secret: str | None = Field(default=None, max_length=128)
    previous_valid_until: datetime | None = _timestamp(nullable=True)
    rotated_at: datetime = _timestamp()
