"""Use cases on model versions: register (artifact + data + code together), approve, read."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from services.registry.adapters.api_keys import find_key_by_name
from services.registry.adapters.blob_store import BlobIntegrityError, BlobStore
from services.registry.adapters.tables import Approval, Dataset, ModelVersion, RegisteredModel
from services.registry.service_layer.context import Actor, get_model, record_change
from services.registry.service_layer.datasets import Provenance, stored_dataset
from services.registry.service_layer.errors import (
    Conflict,
    Forbidden,
    IntegrityFailure,
    InvalidInput,
    NotFound,
)
from services.registry.service_layer.models import Task
from shared.artifact_inspection import Inspection, TrialInput, trial_rows
from shared.contracts import ModelEvent
from shared.model_files import ModelFileError, check_compatible, sha256_hex
from shared.profile import build_profile
from shared.roles import Role
from shared.signature import infer_signature
from shared.tabular import InvalidDataset, parse_csv

ArtifactInspector = Callable[[bytes, TrialInput], Inspection]
"""Reads an uploaded model file under the trust rules and predicts the trial rows with it."""

_TASK_OF_ESTIMATOR = {"classifier": "classification", "regressor": "regression"}


class VersionMetadata(BaseModel):
    """What the caller states about a version beside its files: the lineage and the results."""

    model_config = ConfigDict(extra="forbid")

    code_version: str = Field(
        pattern=r"^[0-9a-f]{7,40}$", description="Git commit the model was trained from."
    )
    target: str = Field(default="target", min_length=1, description="Label column of the data.")
    params: dict[str, Any] = Field(default_factory=dict, description="Training parameters.")
    metrics: dict[str, FiniteFloat] = Field(
        default_factory=dict, description="Held-out metrics; finite, since guardrails compare them."
    )
    tags: dict[str, str] = Field(default_factory=dict)
    description: str = Field(default="", max_length=2000)
    parent_version: int | None = Field(default=None, ge=1, description="Version it derives from.")
    artifact_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 the caller computed; the upload is refused if it differs.",
    )


class ApprovalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    reason: str = Field(min_length=1, max_length=2000, description="Why; kept in the audit log.")


def register_version(
    session: Session,
    store: BlobStore,
    actor: Actor,
    model_name: str,
    *,
    inspect_artifact: ArtifactInspector,
    artifact: bytes,
    dataset: bytes,
    metadata: VersionMetadata,
) -> ModelVersion:
    """Check the artifact and data belong together, store both, and record the version."""
    actor.require(Role.PUBLISHER, "registering a model version")
    model = get_model(session, model_name)
    artifact_sha256 = sha256_hex(artifact)
    if metadata.artifact_sha256 is not None and metadata.artifact_sha256 != artifact_sha256:
        raise InvalidInput(
            f"artifact hash mismatch: metadata says {metadata.artifact_sha256}, "
            f"the uploaded bytes hash to {artifact_sha256}"
        )
    try:
        data = parse_csv(dataset)
        signature = infer_signature(data, target=metadata.target, task=_task(model))
        rows = trial_rows(data.rows(), data.row_count)
        inspection = inspect_artifact(artifact, TrialInput(signature=signature, rows=rows))
    except (ModelFileError, InvalidDataset) as error:
        raise InvalidInput(str(error)) from None
    info = inspection.info
    problems = check_compatible(info, signature)
    if _TASK_OF_ESTIMATOR.get(info.estimator_type) != model.task:
        problems.append(
            f"model {model.name!r} is a {model.task} model, the artifact a {info.estimator_type}"
        )
    if problems:
        raise InvalidInput(
            "the artifact does not fit the dataset: " + "; ".join(problems), details=problems
        )
    if metadata.parent_version is not None:
        _get_version_row(session, model, metadata.parent_version)
    profile = build_profile(data, signature).model_copy(
        update={"predictions": inspection.predictions}
    )

    stored_artifact = store.put(artifact)
    dataset_row = stored_dataset(
        session,
        store,
        dataset,
        data,
        provenance=Provenance(model=model.name),
        actor=actor,
    ).row
    assert model.id is not None and dataset_row.id is not None
    latest = session.exec(
        select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id)
    ).one()
    version = ModelVersion(
        model_id=model.id,
        version=(latest or 0) + 1,
        artifact_sha256=stored_artifact,
        artifact_size=len(artifact),
        estimator_type=info.estimator_type,
        dataset_id=dataset_row.id,
        target=metadata.target,
        code_version=metadata.code_version,
        parent_version=metadata.parent_version,
        description=metadata.description,
        params=metadata.params,
        metrics=metadata.metrics,
        tags=metadata.tags,
        signature=signature.model_dump(mode="json"),
        profile=profile.model_dump(mode="json"),
        created_by=actor.name,
    )
    session.add(version)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            "another version of this model was registered at the same time; retry"
        ) from None
    record_change(
        session,
        actor,
        action="version.registered",
        model=model.name,
        version=version.version,
        details={
            "artifact_sha256": stored_artifact,
            "dataset_sha256": dataset_row.sha256,
            "code_version": metadata.code_version,
            "metrics": metadata.metrics,
        },
        event=ModelEvent(
            event_type="version.registered",
            model=model.name,
            version=version.version,
            artifact_sha256=stored_artifact,
            actor=actor.name,
        ),
    )
    session.commit()
    session.refresh(version)
    return version


def _task(model: RegisteredModel) -> Task:
    return "classification" if model.task == "classification" else "regression"


def _get_version_row(session: Session, model: RegisteredModel, version: int) -> ModelVersion:
    row = session.exec(
        select(ModelVersion).where(
            ModelVersion.model_id == model.id, ModelVersion.version == version
        )
    ).first()
    if row is None:
        raise NotFound(f"model {model.name!r} has no version {version}")
    return row


def get_version(
    session: Session, model_name: str, version: int
) -> tuple[RegisteredModel, ModelVersion]:
    model = get_model(session, model_name)
    return model, _get_version_row(session, model, version)


def list_versions(
    session: Session, model_name: str, *, limit: int, offset: int
) -> Sequence[ModelVersion]:
    model = get_model(session, model_name)
    query = (
        select(ModelVersion)
        .where(ModelVersion.model_id == model.id)
        .order_by(col(ModelVersion.version).desc())
        .offset(offset)
        .limit(limit)
    )
    return session.exec(query).all()


def dataset_of(session: Session, version: ModelVersion) -> Dataset:
    dataset = session.get(Dataset, version.dataset_id)
    if dataset is None:
        raise IntegrityFailure(f"dataset {version.dataset_id} of the version is missing")
    return dataset


def read_blob(store: BlobStore, sha256: str) -> bytes:
    """Stored bytes, hash-checked; corruption is an error, never served."""
    try:
        return store.get(sha256)
    except BlobIntegrityError as error:
        raise IntegrityFailure(str(error)) from None


def decide_approval(
    session: Session, actor: Actor, model_name: str, version_number: int, request: ApprovalRequest
) -> Approval:
    """An approver's verdict on a version; nobody approves their own work, whichever of
    their keys they use: the registering key's owner is compared, not only its name."""
    actor.require(Role.APPROVER, "approving a version")
    model, version = get_version(session, model_name, version_number)
    registering_key = find_key_by_name(session, version.created_by)
    author = registering_key.owner if registering_key is not None else version.created_by
    if version.created_by == actor.name or author == actor.accountable:
        raise Forbidden(
            f"version {version_number} was registered by {author!r}, who owns key "
            f"{actor.name!r} too, and cannot also approve it"
        )
    assert version.id is not None
    approval = Approval(
        version_id=version.id, decision=request.decision, approver=actor.name, reason=request.reason
    )
    version.status = "approved" if request.decision == "approve" else "rejected"
    session.add(approval)
    session.add(version)
    event_type = "version.approved" if request.decision == "approve" else "version.rejected"
    record_change(
        session,
        actor,
        action=event_type,
        model=model.name,
        version=version_number,
        reason=request.reason,
        event=ModelEvent(
            event_type=event_type,
            model=model.name,
            version=version_number,
            actor=actor.name,
            reason=request.reason,
        ),
    )
    session.commit()
    session.refresh(approval)
    return approval


def approvals_of(session: Session, version: ModelVersion) -> Sequence[Approval]:
    query = select(Approval).where(Approval.version_id == version.id).order_by(col(Approval.id))
    return session.exec(query).all()
