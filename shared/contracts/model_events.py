"""`model-events`: every change to model versions or deployments, so workers need not poll."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.contracts.base import ModelName, Timestamp, VersionNumber, WireModel, new_id, utc_now

ModelEventType = Literal[
    "model.registered",
    "model.updated",
    "version.registered",
    "version.approved",
    "version.rejected",
    "deployment.changed",
]


class DeploymentState(WireModel):
    """Which versions serve a model, and how traffic is split."""

    production: VersionNumber | None = None
    canary: VersionNumber | None = None
    canary_weight: float = Field(default=0.0, ge=0.0, le=1.0)
    shadow: VersionNumber | None = None
    revision: int | None = Field(
        default=None,
        ge=0,
        description=(
            "The deployment's revision in the registry, one higher per change of this model; "
            "a consumer ignores a state whose revision is not above the one it holds."
        ),
    )


class ModelEvent(WireModel):
    """Something changed in the registry."""

    event_id: str = Field(default_factory=new_id)
    event_type: ModelEventType
    model: ModelName
    version: VersionNumber | None = None
    deployment: DeploymentState | None = Field(
        default=None, description="The deployment after the change (deployment.changed)."
    )
    artifact_sha256: str | None = Field(default=None, description="For version events.")
    actor: str = Field(description="Who made the change (API key name).")
    reason: str | None = None
    occurred_at: Timestamp = Field(default_factory=utc_now)
