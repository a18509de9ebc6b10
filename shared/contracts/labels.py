"""`labels`: predictions joined with the ground truth that feedback brought."""

from __future__ import annotations

from pydantic import Field

from shared.contracts.base import (
    FeatureValue,
    Label,
    ModelName,
    RequestId,
    Timestamp,
    VersionNumber,
    WireModel,
    utc_now,
)


class LabelledExample(WireModel):
    """A served input with the label it turned out to have."""

    request_id: RequestId
    model: ModelName
    version: VersionNumber
    inputs: dict[str, FeatureValue]
    predicted: Label | None = None
    label: Label
    source: str = Field(description="Where the label came from (feedback source or reviewer).")
    labelled_at: Timestamp = Field(default_factory=utc_now)
