"""The registry's HTTP routes under /v1: thin adapters from HTTP to the use cases."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Response, UploadFile, status
from pydantic import ValidationError

from services.registry.entrypoints.dependencies import (
    ActorDep,
    ContainerDep,
    Limit,
    Offset,
    ReaderDep,
    SessionDep,
)
from services.registry.entrypoints.views import (
    ApiKeyCreated,
    ApiKeyPublic,
    ApprovalPublic,
    AuditRecordPublic,
    DatasetPublic,
    DeploymentPublic,
    DeploymentRecordPublic,
    ErrorBody,
    ModelPublic,
    VersionPublic,
    WebhookSecretIssued,
)
from services.registry.service_layer import (
    access,
    audit,
    datasets,
    deployments,
    models,
    versions,
)
from services.registry.service_layer.context import get_model as get_registered_model
from services.registry.service_layer.errors import InvalidInput
from shared.kafka.codec import describe_validation_error

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 429)
}
router = APIRouter(prefix="/v1", responses=ERRORS)
Reason = Annotated[str, Query(min_length=1, max_length=2000, description="Why; audited.")]
ExpectedRevision = Annotated[
    int | None,
    Query(ge=0, description="The deployment revision the change was decided on; 409 if stale."),
]


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, tags=["access"])
def create_api_key(
    body: access.ApiKeyCreate, actor: ActorDep, session: SessionDep, container: ContainerDep
) -> ApiKeyCreated:
    """Issue an API key with a role, an owner and optionally an expiry (admin only). The
    token and the key's webhook secret are returned only this once."""
    issued = access.create_key(
        session,
        container.webhook_secrets,
        actor,
        body,
        overlap=timedelta(seconds=container.settings.webhook_secret_overlap_seconds),
    )
    return ApiKeyCreated(
        **ApiKeyPublic.of(issued.key).model_dump(),
        key=issued.token,
        webhook_secret=issued.webhook_secret,
    )


@router.get("/api-keys", tags=["access"])
def list_api_keys(actor: ActorDep, session: SessionDep) -> list[ApiKeyPublic]:
    """Every key with its role, owner, expiry and revocation (admin only); never a token."""
    return [ApiKeyPublic.of(row) for row in access.list_keys(actor, session)]


@router.delete("/api-keys/{name}", tags=["access"])
def revoke_api_key(name: str, actor: ActorDep, session: SessionDep) -> ApiKeyPublic:
    """Revoke a key at once (admin, or the key itself). Gateways stop accepting it within
    their auth-cache lifetime (MODELBUS_AUTH_CACHE_SECONDS)."""
    return ApiKeyPublic.of(access.revoke_key(session, actor, name))


@router.post("/api-keys/{name}/webhook-secret", tags=["access"])
def rotate_webhook_secret(
    name: str,
    actor: ActorDep,
    session: SessionDep,
    container: ContainerDep,
    overlap_seconds: Annotated[
        float | None,
        Query(ge=0, le=30 * 86_400, description="How long the old secret still signs."),
    ] = None,
) -> WebhookSecretIssued:
    """A new webhook secret for the key (admin, or the key itself), shown only this once.
    Until the overlap ends every webhook carries both signatures."""
    overlap = (
        overlap_seconds
        if overlap_seconds is not None
        else container.settings.webhook_secret_overlap_seconds
    )
    issued = access.rotate_webhook_secret(
        session, container.webhook_secrets, actor, name, overlap=timedelta(seconds=overlap)
    )
    return WebhookSecretIssued(
        key=issued.subscriber,
        webhook_secret=issued.secret,
        previous_valid_until=issued.previous_valid_until,
    )


@router.get("/whoami", tags=["access"])
def whoami(actor: ActorDep) -> dict[str, str]:
    """The caller's key name, role and owner; other services use it to authenticate callers."""
    return {"name": actor.name, "role": actor.role.value, "owner": actor.accountable}


@router.post("/models", status_code=status.HTTP_201_CREATED, tags=["models"])
def create_model(body: models.ModelCreate, actor: ActorDep, session: SessionDep) -> ModelPublic:
    """Register a model name, its task, its promotion policy and its feedback policy."""
    return ModelPublic.of(models.create_model(session, actor, body))


@router.get("/models", tags=["models"])
def list_models(
    _actor: ReaderDep, session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> list[ModelPublic]:
    return [ModelPublic.of(row) for row in models.list_models(session, limit=limit, offset=offset)]


@router.get("/models/{name}", tags=["models"])
def get_model(name: str, _actor: ReaderDep, session: SessionDep) -> ModelPublic:
    return ModelPublic.of(get_registered_model(session, name))


@router.patch("/models/{name}", tags=["models"])
def update_model(
    name: str, body: models.ModelUpdate, actor: ActorDep, session: SessionDep
) -> ModelPublic:
    """Change the description, routing options or (approver) the promotion or feedback policy.

    Routing options are checked (a cascade's small version must exist and be allowed to
    serve); under an approval policy only an approver changes them.
    """
    return ModelPublic.of(models.update_model(session, actor, name, body))


def _version_view(session: SessionDep, name: str, number: int) -> VersionPublic:
    model, row = versions.get_version(session, name, number)
    return VersionPublic.of(
        model, row, versions.dataset_of(session, row), list(versions.approvals_of(session, row))
    )


@router.post("/models/{name}/versions", status_code=status.HTTP_201_CREATED, tags=["versions"])
async def register_version(
    name: str,
    artifact: Annotated[UploadFile, Form(description="The model, saved with skops.")],
    dataset: Annotated[UploadFile, Form(description="Training data as CSV with a header.")],
    metadata: Annotated[str, Form(description="JSON: code_version, target, params, metrics…")],
    actor: ActorDep,
    session: SessionDep,
    container: ContainerDep,
) -> VersionPublic:
    """Register a version: artifact, training data and code version, checked to fit together."""
    try:
        parsed = versions.VersionMetadata.model_validate_json(metadata)
    except ValidationError as error:
        raise InvalidInput(
            f"metadata: {describe_validation_error(error)}",
            details=error.errors(include_url=False, include_context=False, include_input=False),
        ) from None
    artifact_bytes, dataset_bytes = await artifact.read(), await dataset.read()

    def register() -> VersionPublic:
        row = versions.register_version(
            session,
            container.store,
            actor,
            name,
            inspect_artifact=container.inspect_artifact,
            artifact=artifact_bytes,
            dataset=dataset_bytes,
            metadata=parsed,
        )
        return _version_view(session, name, row.version)

    return await asyncio.to_thread(register)


@router.get("/models/{name}/versions", tags=["versions"])
def list_versions(
    name: str, _actor: ReaderDep, session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> list[VersionPublic]:
    rows = versions.list_versions(session, name, limit=limit, offset=offset)
    return [_version_view(session, name, row.version) for row in rows]


@router.get("/models/{name}/versions/{number}", tags=["versions"])
def get_version(name: str, number: int, _actor: ReaderDep, session: SessionDep) -> VersionPublic:
    return _version_view(session, name, number)


@router.get(
    "/models/{name}/versions/{number}/artifact",
    tags=["versions"],
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_artifact(
    name: str, number: int, _actor: ReaderDep, session: SessionDep, container: ContainerDep
) -> Response:
    """The skops file, hash-checked before it is sent; its SHA-256 is in the ETag."""
    _, row = versions.get_version(session, name, number)
    data = versions.read_blob(container.store, row.artifact_sha256)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "ETag": f'"{row.artifact_sha256}"',
            "Content-Disposition": f'attachment; filename="{name}-v{number}.skops"',
        },
    )


@router.get("/models/{name}/versions/{number}/profile", tags=["versions"])
def get_profile(name: str, number: int, _actor: ReaderDep, session: SessionDep) -> dict[str, Any]:
    """The reference profile of the training data, which drift is measured against."""
    _, row = versions.get_version(session, name, number)
    return row.profile


@router.post(
    "/models/{name}/versions/{number}/approvals",
    status_code=status.HTTP_201_CREATED,
    tags=["versions"],
)
def decide_approval(
    name: str,
    number: int,
    body: versions.ApprovalRequest,
    actor: ActorDep,
    session: SessionDep,
) -> ApprovalPublic:
    """Approve or reject a version for production (approver role; not your own version)."""
    return ApprovalPublic.of(versions.decide_approval(session, actor, name, number, body))


@router.post(
    "/datasets",
    status_code=status.HTTP_201_CREATED,
    tags=["datasets"],
    responses={200: {"model": DatasetPublic, "description": "The same content was stored."}},
)
async def register_dataset(
    content: Annotated[UploadFile, Form(description="The snapshot as CSV with a header.")],
    actor: ActorDep,
    session: SessionDep,
    container: ContainerDep,
    response: Response,
    model: Annotated[
        str | None, Form(description="The registered model the data was taken for.")
    ] = None,
    description: Annotated[
        str, Form(max_length=datasets.MAX_DESCRIPTION, description="How it was made; audited.")
    ] = "",
) -> DatasetPublic:
    """Store a dataset snapshot (publisher role), checked like a version's training data and
    named by its SHA-256: 201 when new, 200 when the same bytes were already stored (their
    first description is kept)."""
    data = await content.read()
    provenance = datasets.Provenance(model=model or None, description=description)

    def register() -> DatasetPublic:
        stored = datasets.register_dataset(session, container.store, actor, data, provenance)
        if not stored.created:
            response.status_code = status.HTTP_200_OK
        return DatasetPublic.of(stored.row)

    return await asyncio.to_thread(register)


@router.get("/datasets", tags=["datasets"])
def list_datasets(
    _actor: ReaderDep,
    session: SessionDep,
    model: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[DatasetPublic]:
    """Stored snapshots, newest first; `model` keeps those taken for one model."""
    rows = datasets.list_datasets(session, model=model, limit=limit, offset=offset)
    return [DatasetPublic.of(row) for row in rows]


@router.get("/datasets/{sha256}", tags=["datasets"])
def get_dataset(sha256: str, _actor: ReaderDep, session: SessionDep) -> DatasetPublic:
    return DatasetPublic.of(datasets.get_dataset(session, sha256))


@router.get(
    "/datasets/{sha256}/content",
    tags=["datasets"],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def download_dataset(
    sha256: str, _actor: ReaderDep, session: SessionDep, container: ContainerDep
) -> Response:
    """The stored training-data snapshot, hash-checked."""
    dataset = datasets.get_dataset(session, sha256)
    data = versions.read_blob(container.store, dataset.sha256)
    return Response(data, media_type="text/csv", headers={"ETag": f'"{dataset.sha256}"'})


@router.get("/models/{name}/deployment", tags=["deployments"])
def get_deployment(name: str, _actor: ReaderDep, session: SessionDep) -> DeploymentPublic:
    """Which versions serve now: production, canary with its weight, shadow."""
    return DeploymentPublic.of(name, deployments.current_deployment(session, name))


@router.get("/models/{name}/deployment/history", tags=["deployments"])
def get_deployment_history(
    name: str, _actor: ReaderDep, session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> list[DeploymentRecordPublic]:
    """What served when, newest first."""
    rows = deployments.history(session, name, limit=limit, offset=offset)
    return [DeploymentRecordPublic.of(row) for row in rows]


@router.post("/models/{name}/deployment/production", tags=["deployments"])
def promote(
    name: str, body: deployments.PromoteRequest, actor: ActorDep, session: SessionDep
) -> DeploymentPublic:
    """Promote a version to production: it needs an approval, or the model's guardrail."""
    return DeploymentPublic.of(name, deployments.promote(session, actor, name, body))


@router.post("/models/{name}/deployment/canary", tags=["deployments"])
def start_canary(
    name: str,
    body: deployments.CanaryRequest,
    actor: ActorDep,
    session: SessionDep,
    container: ContainerDep,
) -> DeploymentPublic:
    """Send a share of traffic to a version, sticky per routing key.

    Under an approval policy the version must be approved; a weight above
    MODELBUS_MAX_CANARY_WEIGHT needs the approver role.
    """
    limit = container.settings.max_canary_weight
    changed = deployments.set_canary(session, actor, name, body, max_unreviewed_weight=limit)
    return DeploymentPublic.of(name, changed)


@router.delete("/models/{name}/deployment/canary", tags=["deployments"])
def stop_canary(
    name: str,
    reason: Reason,
    actor: ActorDep,
    session: SessionDep,
    expected_revision: ExpectedRevision = None,
) -> DeploymentPublic:
    changed = deployments.clear_canary(
        session, actor, name, reason, expected_revision=expected_revision
    )
    return DeploymentPublic.of(name, changed)


@router.post("/models/{name}/deployment/shadow", tags=["deployments"])
def start_shadow(
    name: str, body: deployments.ShadowRequest, actor: ActorDep, session: SessionDep
) -> DeploymentPublic:
    """Let a version predict on live traffic without its answers being delivered."""
    return DeploymentPublic.of(name, deployments.set_shadow(session, actor, name, body))


@router.delete("/models/{name}/deployment/shadow", tags=["deployments"])
def stop_shadow(
    name: str,
    reason: Reason,
    actor: ActorDep,
    session: SessionDep,
    expected_revision: ExpectedRevision = None,
) -> DeploymentPublic:
    changed = deployments.clear_shadow(
        session, actor, name, reason, expected_revision=expected_revision
    )
    return DeploymentPublic.of(name, changed)


@router.post("/models/{name}/rollback", tags=["deployments"])
def rollback(
    name: str, body: deployments.ReasonRequest, actor: ActorDep, session: SessionDep
) -> DeploymentPublic:
    """One call back to the previous production version (any canary stops)."""
    changed = deployments.rollback(
        session, actor, name, body.reason, expected_revision=body.expected_revision
    )
    return DeploymentPublic.of(name, changed)


@router.get("/audit", tags=["audit"])
def list_audit(
    _actor: ReaderDep,
    session: SessionDep,
    model: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[AuditRecordPublic]:
    """Every change: who, what, when and why, newest first."""
    rows = audit.list_audit(
        session, model=model, actor=actor, action=action, limit=limit, offset=offset
    )
    return [AuditRecordPublic.of(row) for row in rows]
