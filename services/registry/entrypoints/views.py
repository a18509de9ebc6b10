"""What the HTTP API returns: public views of the registry's records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from services.registry.adapters.tables import (
    ApiKey,
    Approval,
    AuditRecord,
    Dataset,
    Deployment,
    DeploymentRecord,
    ModelVersion,
    RegisteredModel,
)
from shared.feedback_policy import FeedbackPolicy
from shared.roles import Role


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer has this shape, saying what was wrong."""

    error: ErrorDetail


class DeploymentPublic(BaseModel):
    model: str
    production: int | None
    canary: int | None
    canary_weight: float
    shadow: int | None
    revision: int
    updated_at: datetime

    @classmethod
    def of(cls, model: str, row: Deployment) -> DeploymentPublic:
        return cls(
            model=model,
            production=row.production,
            canary=row.canary,
            canary_weight=row.canary_weight,
            shadow=row.shadow,
            revision=row.revision,
            updated_at=as_utc(row.updated_at),
        )


class DeploymentRecordPublic(BaseModel):
    revision: int
    action: str
    production: int | None
    canary: int | None
    canary_weight: float
    shadow: int | None
    actor: str
    reason: str
    created_at: datetime

    @classmethod
    def of(cls, row: DeploymentRecord) -> DeploymentRecordPublic:
        return cls.model_validate(
            row.model_dump() | {"created_at": as_utc(row.created_at)}, from_attributes=False
        )


class ModelPublic(BaseModel):
    name: str
    task: str
    description: str
    policy: dict[str, Any]
    routing: dict[str, Any]
    feedback: FeedbackPolicy = Field(
        description="How feedback becomes labels and what is reviewed (the default if unset)."
    )
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, row: RegisteredModel) -> ModelPublic:
        return cls(
            name=row.name,
            task=row.task,
            description=row.description,
            policy=row.policy,
            routing=row.routing,
            feedback=FeedbackPolicy.model_validate(row.feedback or {}),
            created_by=row.created_by,
            created_at=as_utc(row.created_at),
        )


class ApprovalPublic(BaseModel):
    decision: str
    approver: str
    reason: str
    created_at: datetime

    @classmethod
    def of(cls, row: Approval) -> ApprovalPublic:
        return cls(
            decision=row.decision,
            approver=row.approver,
            reason=row.reason,
            created_at=as_utc(row.created_at),
        )


class DatasetPublic(BaseModel):
    sha256: str
    size_bytes: int
    row_count: int
    columns: list[str]
    content_url: str
    model: str | None = Field(description="The model the data was taken for, if any.")
    description: str
    created_by: str | None = Field(description="The key that first stored it, if known.")
    created_at: datetime

    @classmethod
    def of(cls, row: Dataset) -> DatasetPublic:
        return cls(
            sha256=row.sha256,
            size_bytes=row.size_bytes,
            row_count=row.row_count,
            columns=row.columns,
            content_url=f"/v1/datasets/{row.sha256}/content",
            model=row.model,
            description=row.description,
            created_by=row.created_by,
            created_at=as_utc(row.created_at),
        )


class ArtifactPublic(BaseModel):
    sha256: str
    size_bytes: int
    format: str = "skops"
    url: str


class VersionPublic(BaseModel):
    """A version with its whole lineage: artifact, data, code, parameters and results."""

    model: str
    version: int
    status: str
    estimator_type: str
    artifact: ArtifactPublic
    dataset: DatasetPublic
    code_version: str
    parent_version: int | None
    target: str
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    description: str
    signature: dict[str, Any]
    profile_url: str
    approvals: list[ApprovalPublic] = Field(default_factory=list)
    created_by: str
    created_at: datetime

    @classmethod
    def of(
        cls,
        model: RegisteredModel,
        row: ModelVersion,
        dataset: Dataset,
        approvals: list[Approval],
    ) -> VersionPublic:
        base = f"/v1/models/{model.name}/versions/{row.version}"
        return cls(
            model=model.name,
            version=row.version,
            status=row.status,
            estimator_type=row.estimator_type,
            artifact=ArtifactPublic(
                sha256=row.artifact_sha256, size_bytes=row.artifact_size, url=f"{base}/artifact"
            ),
            dataset=DatasetPublic.of(dataset),
            code_version=row.code_version,
            parent_version=row.parent_version,
            target=row.target,
            params=row.params,
            metrics=row.metrics,
            tags=row.tags,
            description=row.description,
            signature=row.signature,
            profile_url=f"{base}/profile",
            approvals=[ApprovalPublic.of(approval) for approval in approvals],
            created_by=row.created_by,
            created_at=as_utc(row.created_at),
        )


class AuditRecordPublic(BaseModel):
    id: int
    actor: str
    action: str
    model: str | None
    version: int | None
    reason: str
    details: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, row: AuditRecord) -> AuditRecordPublic:
        assert row.id is not None
        return cls(
            id=row.id,
            actor=row.actor,
            action=row.action,
            model=row.model,
            version=row.version,
            reason=row.reason,
            details=row.details,
            created_at=as_utc(row.created_at),
        )


class ApiKeyPublic(BaseModel):
    name: str
    role: Role
    owner: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> ApiKeyPublic:
        return cls(
            name=row.name,
            role=Role(row.role),
            owner=row.owner,
            created_at=as_utc(row.created_at),
            expires_at=as_utc(row.expires_at) if row.expires_at else None,
            revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,
        )


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The token; shown only once, store it now.")
    webhook_secret: str | None = Field(
        description="Standard Webhooks secret (whsec_...) that signs the webhooks of jobs "
        "this key submits; shown only once. Null when the registry keeps no webhook secrets."
    )


class WebhookSecretIssued(BaseModel):
    key: str = Field(description="The API key whose webhooks the secret signs.")
    webhook_secret: str = Field(description="The new secret; shown only once.")
    previous_valid_until: datetime | None = Field(
        description="Until when the previous secret still signs too (both signatures sent)."
    )
