"""The settings base every service shares: one env prefix, fail-fast on unsafe values."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.kafka.security import KafkaSecurity, SaslMechanism, SecurityProtocol

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

    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    """How Kafka clients connect: PLAINTEXT (development only), SSL (mTLS with a client
    certificate), SASL_PLAINTEXT or SASL_SSL (SASL, over TLS in production)."""

    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    """SASL mechanism of the SASL protocols: SCRAM-SHA-256/512 (or PLAIN over TLS)."""

    kafka_sasl_username: str | None = None
    """SASL user of this service; each service gets its own, with ACLs for its topics."""

    kafka_sasl_password: SecretStr | None = None
    """Password of the SASL user."""

    kafka_ssl_cafile: str | None = None
    """CA bundle that signed the brokers' certificates (SSL, SASL_SSL); system CAs if unset."""

    kafka_ssl_certfile: str | None = None
    """Client certificate (PEM) for mutual TLS (SSL)."""

    kafka_ssl_keyfile: str | None = None
    """Private key (PEM) of the client certificate."""

    kafka_client_id: str = "modelbus"
    """Client id prefix Kafka clients announce, so broker logs show who is who."""

    topic_prefix: str = ""
    """Prefix for every topic name, so several stacks (or test runs) share one cluster."""

    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    """Root log level of the service."""

    otel_exporter: Literal["none", "console", "otlp"] = "none"
    """Where OpenTelemetry spans go; `none` keeps tracing in-process only."""

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Self:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"MODELBUS_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "MODELBUS_KAFKA_SASL_USERNAME and MODELBUS_KAFKA_SASL_PASSWORD"
            )
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("MODELBUS_KAFKA_SSL_CERTFILE and _KEYFILE go together")
        return self

    @property
    def kafka_security(self) -> KafkaSecurity:
        """The security block every Kafka client of the service is built with."""
        password = self.kafka_sasl_password
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=password.get_secret_value() if password is not None else None,
            ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile,
            ssl_keyfile=self.kafka_ssl_keyfile,
        )

    def topic(self, name: str) -> str:
        """The full topic name for a logical topic name."""
        return f"{self.topic_prefix}{name}"
