"""Feedback settings: where the join keeps its state, how long it waits and remembers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from shared.settings import ModelbusSettings


class FeedbackSettings(ModelbusSettings):
    """`MODELBUS_*` settings of the feedback labelling service."""

    feedback_database_url: str = "sqlite:///.cache/feedback/feedback.db"
    """SQLAlchemy URL of the join's state and the labelled examples; PostgreSQL in
    production (every replica shares it, so a rebalance moves no state)."""

    registry_url: str | None = "http://127.0.0.1:8000"
    """The registry, for each model's feedback policy; unset, every model gets the default."""

    registry_api_key: SecretStr | None = None
    """Key (reader role or above) the service reads feedback policies with."""

    registry_timeout_seconds: float = Field(default=10.0, gt=0)
    """Deadline of one registry request."""

    policy_cache_seconds: float = Field(default=30.0, ge=0, le=3600)
    """How long a model's feedback policy is reused before the registry is asked again."""

    match_wait_seconds: float = Field(default=600.0, gt=0)
    """How long feedback waits for its prediction before it is dead-lettered as unmatched."""

    retention_days: float = Field(default=7.0, gt=0)
    """How long requests and predictions are kept for feedback that comes days later."""

    sweep_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    """How often expired feedback is dead-lettered and old predictions are forgotten."""

    consumer_group: str = Field(default="modelbus-feedback", min_length=1)
    """Kafka consumer group of the join; replicas share the partitions of all three topics."""

    consumer_offset_reset: Literal["earliest", "latest"] = "earliest"
    """Where a new group starts reading."""

    consume_max_records: int = Field(default=2000, ge=1, le=20_000)
    """Most records joined in one batch (one transaction)."""

    session_timeout_ms: int = Field(default=10_000, ge=1_000, le=300_000)
    """How long the group waits for a silent member before its partitions move: after a
    crash, the restarted process waits about this long for them. Brokers refuse less than
    their group.min.session.timeout.ms (6 s by default)."""

    feedback_health_host: str = "127.0.0.1"
    """Interface of the health, metrics and HTTP API server."""

    feedback_health_port: int | None = Field(default=8005, ge=0, le=65535)
    """Port of the health, metrics and HTTP API server; 0 picks a free one, unset none."""

    quality_window_seconds: float = Field(default=86_400.0, gt=0)
    """Live quality covers predictions made within this window (a day by default)."""

    quality_publish_seconds: float = Field(default=60.0, gt=0)
    """How often live quality is measured, published on `live-quality` and exported."""

    auth_cache_seconds: float = Field(default=30.0, ge=0, le=3600)
    """How long an API key's verdict from the registry is reused (a revocation takes
    effect within this time)."""

    review_lease_seconds: float = Field(default=900.0, gt=0, le=86_400)
    """How long a reviewer holds a claimed item before others may take it."""

    @field_validator("registry_url", mode="before")
    @classmethod
    def _empty_means_none(cls, value: object) -> object:
        """MODELBUS_REGISTRY_URL= (empty) means no registry, as unset does."""
        return None if isinstance(value, str) and not value.strip() else value
