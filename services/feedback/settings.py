"""Feedback settings: where the join keeps its state, how long it waits and remembers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

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

    feedback_health_host: str = "127.0.0.1"
    """Interface of the health, metrics and HTTP API server."""

    feedback_health_port: int | None = Field(default=8005, ge=0, le=65535)
    """Port of the health, metrics and HTTP API server; 0 picks a free one, unset none."""
