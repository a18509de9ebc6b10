"""Database tables of the registry; they never travel: the API and Kafka have their own models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from shared.contracts.base import utc_now


def _timestamp(**kwargs: Any) -> Any:
    return Field(default_factory=utc_now, sa_column=Column(DateTime(timezone=True), **kwargs))


def _json(default: Any) -> Any:
    return Field(default_factory=default, sa_column=Column(JSON, nullable=False))


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=128)
    role: str = Field(max_length=16)
    key_hash: str = Field(unique=True, max_length=64)
    owner: str = Field(max_length=128, index=True)
    """The person or team the key belongs to: two keys of one owner are one approver."""
    created_at: datetime = _timestamp(nullable=False)
    expires_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class RegisteredModel(SQLModel, table=True):
    __tablename__ = "models"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=128)
    task: str = Field(max_length=16)
    description: str = Field(default="", max_length=2000)
    policy: dict[str, Any] = _json(dict)
    routing: dict[str, Any] = _json(dict)
    feedback: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    """The feedback policy; None is the default policy."""
    created_by: str = Field(max_length=128)
    created_at: datetime = _timestamp(nullable=False)


class Dataset(SQLModel, table=True):
    __tablename__ = "datasets"

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(unique=True, max_length=64)
    size_bytes: int
    row_count: int
    columns: list[str] = _json(list)
    model: str | None = Field(default=None, max_length=128, index=True)
    """The model the data was taken for, if any (its first registration says)."""
    description: str = Field(default="", max_length=2000, sa_column_kwargs={"server_default": ""})
    created_by: str | None = Field(default=None, max_length=128)
    """The key that first stored it (unknown for snapshots stored before this was kept)."""
    created_at: datetime = _timestamp(nullable=False)


class ModelVersion(SQLModel, table=True):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_version"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="models.id", index=True)
    version: int
    status: str = Field(default="registered", max_length=16)
    artifact_sha256: str = Field(max_length=64)
    artifact_size: int
    estimator_type: str = Field(max_length=16)
    dataset_id: int = Field(foreign_key="datasets.id")
    target: str = Field(max_length=128)
    code_version: str = Field(max_length=64)
    parent_version: int | None = None
    description: str = Field(default="", max_length=2000)
    params: dict[str, Any] = _json(dict)
    metrics: dict[str, float] = _json(dict)
    tags: dict[str, str] = _json(dict)
    signature: dict[str, Any] = _json(dict)
    profile: dict[str, Any] = _json(dict)
    created_by: str = Field(max_length=128)
    created_at: datetime = _timestamp(nullable=False)


class Approval(SQLModel, table=True):
    __tablename__ = "approvals"

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="model_versions.id", index=True)
    decision: str = Field(max_length=16)
    approver: str = Field(max_length=128)
    reason: str = Field(max_length=2000)
    created_at: datetime = _timestamp(nullable=False)


class Deployment(SQLModel, table=True):
    __tablename__ = "deployments"

    model_id: int = Field(foreign_key="models.id", primary_key=True)
    production: int | None = None
    canary: int | None = None
    canary_weight: float = 0.0
    shadow: int | None = None
    revision: int = 0
    updated_at: datetime = _timestamp(nullable=False)


class DeploymentRecord(SQLModel, table=True):
    """One row per deployment change: what served when, and why."""

    __tablename__ = "deployment_history"
    __table_args__ = (
        UniqueConstraint("model_id", "revision", name="uq_deployment_history_revision"),
    )

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="models.id", index=True)
    revision: int = Field(description="The deployment's revision this change produced.")
    action: str = Field(max_length=32)
    production: int | None = None
    canary: int | None = None
    canary_weight: float = 0.0
    shadow: int | None = None
    actor: str = Field(max_length=128)
    reason: str = Field(default="", max_length=2000)
    created_at: datetime = _timestamp(nullable=False)


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    actor: str = Field(max_length=128, index=True)
    action: str = Field(max_length=64)
    model: str | None = Field(default=None, max_length=128, index=True)
    version: int | None = None
    reason: str = Field(default="", max_length=2000)
    details: dict[str, Any] = _json(dict)
    created_at: datetime = _timestamp(nullable=False)


class OutboxEvent(SQLModel, table=True):
    """Events written in the same transaction as the change, relayed to Kafka afterwards."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=128)
    key: str | None = Field(default=None, max_length=256)
    payload: str
    created_at: datetime = _timestamp(nullable=False)
    published_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True, index=True)
    )
