"""Registry settings: where data lives, who the first admin is, how big uploads may be."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator

from shared.settings import ModelbusSettings

MIN_KEY_LENGTH = 24


class RegistrySettings(ModelbusSettings):
    """`MODELBUS_*` settings of the model registry service."""

    database_url: str = "sqlite:///.cache/registry/registry.db"
    """SQLAlchemy URL: SQLite by default, `postgresql+psycopg://...` in production."""

    artifact_dir: Path = Path(".cache/registry/blobs")
    """Folder of the content-addressed store for model artifacts and dataset snapshots."""

    admin_api_key: SecretStr | None = None
    """Bootstrap admin key, ensured at start-up; required outside development."""

    max_upload_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Largest accepted request body (artifact plus dataset); bigger ones get 413."""

    inspect_memory_bytes: int = Field(default=1024 * 1024 * 1024, ge=64 * 1024 * 1024)
    """Memory an upload's inspection (a child process) may use before it is refused."""

    inspect_max_unpacked_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024 * 1024)
    """Largest total a model file's zip may declare uncompressed (decompression bombs)."""

    inspect_cpu_seconds: int = Field(default=30, ge=1)
    """CPU time an upload's inspection may use before it is refused."""

    inspect_wall_seconds: float = Field(default=60.0, gt=0)
    """Wall time an upload's inspection may take before its child is killed."""

    publish_events: bool = True
    """Relay `model-events` to Kafka; off only for running the API without a broker."""

    max_canary_weight: float = Field(default=0.5, gt=0.0, lt=1.0)
    """Largest canary share of traffic a publisher may set; above it needs an approver."""

    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    """How often the outbox relay looks for events it has not yet published."""

    jobs_database_url: str | None = None
    """SQLAlchemy URL of the job store the delivery service reads (MODELBUS_JOBS_DATABASE_URL,
    as for the gateway and delivery): each API key's webhook secret is kept there. Unset,
    keys get no secret of their own and delivery signs their webhooks with its default."""

    webhook_secret_overlap_seconds: float = Field(default=86_400.0, ge=0, le=30 * 86_400)
    """Default time a rotated-out webhook secret still signs, so receivers can switch."""

    auth_failures_per_second: float = Field(default=5.0, gt=0)
    """Sustained failed authentications (unknown, revoked or expired keys) one client
    address may make before it gets 429; per registry process."""

    auth_failures_burst: int = Field(default=50, ge=1)
    """Failed authentications one client address may make at once."""

    registry_host: str = "127.0.0.1"
    """Interface the HTTP server binds to."""

    registry_port: int = Field(default=8000, ge=1, le=65535)
    """Port the HTTP server listens on."""

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        if self.environment != "production":
            return self
        key = self.admin_api_key.get_secret_value() if self.admin_api_key else ""
        if len(key) < MIN_KEY_LENGTH:
            raise ValueError(
                f"MODELBUS_ADMIN_API_KEY must be set to at least {MIN_KEY_LENGTH} characters "
                "in production"
            )
        if self.database_url.startswith("sqlite"):
            raise ValueError("production needs MODELBUS_DATABASE_URL to point at PostgreSQL")
        if self.jobs_database_url is None:
            raise ValueError(
                "production needs MODELBUS_JOBS_DATABASE_URL, where each API key's webhook "
                "secret is kept for the delivery service"
            )
        return self
