"""`labels`: predictions joined with the ground truth that feedback brought."""

from __future__ import annotations

from typing import Literal

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
from shared.contracts.feedback import FeedbackAuthority
from shared.contracts.predictions import Variant

LabelStrength = Literal["label", "weak"]


class LabelledExample(WireModel):
    """A served input, what one serving variant predicted, and the label that stands.

    A request's label is published again whenever a batch touches the request (new
    feedback, a late shadow answer, a replay after a crash); `label_id` names one state.
    Consumers keep one record per (request_id, variant): the one whose decider ranks
    highest by (authority, strength "label" over "weak", labelled_at, feedback_id), which
    is the standing label whatever order replicas published in, and drop repeats by
    `label_id`.
    """

    label_id: str = Field(
        max_length=300, description="Request, variant and the feedback that decided it."
    )
    request_id: RequestId
    model: ModelName
    version: VersionNumber
    variant: Variant
    inputs: dict[str, FeatureValue]
    predicted: Label | None = Field(
        default=None, description="The variant's predicted label or value; None on an error."
    )
    label: Label | None = Field(
        default=None,
        description="The standing label; None when feedback only said the prediction was wrong.",
    )
    refuted: Label | None = Field(
        default=None, description="A label the feedback ruled out, when it named no other."
    )
    correct: bool | None = Field(
        default=None, description="Whether the variant's prediction was right, when known."
    )
    strength: LabelStrength = Field(
        description="'label' for ground truth; 'weak' for an implicit signal's guess."
    )
    source: str = Field(max_length=128, description="Who gave the standing label.")
    authority: FeedbackAuthority
    feedback_id: str = Field(max_length=128, description="The feedback that decided the label.")
    conflicting: bool = Field(
        default=False, description="Other feedback for this request named another label."
    )
    predicted_at: Timestamp
    labelled_at: Timestamp = Field(description="When the standing label was given.")
    published_at: Timestamp = Field(default_factory=utc_now)
