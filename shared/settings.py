"""The settings base every service shares: one env prefix, fail-fast on unsafe values."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]


class ModelbusSettings(BaseSettings):
    """Settings read from `MODELBUS_*` environment variables (and an optional `.env`)."""

    model_config = SettingsConfigDict(
        env_prefix="MODELBUS_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Environment = "development"
    """Where we run; `production` refuses development defaults such as dev API keys."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    """Comma-separated Kafka bootstrap servers."""

    kafka_client_id: str = "modelbus"
    """Client id prefix Kafka clients announce, so broker logs show who is who."""

    topic_prefix: str = ""
    """Prefix for every topic name, so several stacks (or test runs) share one cluster."""

    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    """Root log level of the service."""

    otel_exporter: Literal["none", "console", "otlp"] = "none"
    """Where OpenTelemetry spans go; `none` keeps tracing in-process only."""

    def topic(self, name: str) -> str:
        """The full topic name for a logical topic name."""
        return f"{self.topic_prefix}{name}"
