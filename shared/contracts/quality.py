"""`live-quality`: how each model version does in production, from the labels that came back."""

from __future__ import annotations

from pydantic import Field

from shared.contracts.base import ModelName, Timestamp, VersionNumber, WireModel, utc_now
from shared.contracts.predictions import Variant


class LiveQuality(WireModel):
    """Live quality of one version as one variant served it, over a recent window.

    Published periodically by the feedback service; consumers keep the latest per
    (model, version, variant).
    """

    model: ModelName
    version: VersionNumber
    variant: Variant
    window_seconds: float = Field(gt=0, description="Predictions made within this window.")
    predictions: int = Field(ge=0)
    labelled: int = Field(ge=0, description="Predictions with a standing label.")
    coverage: float | None = Field(default=None, description="labelled / predictions.")
    accuracy: float | None = Field(default=None, description="Classifiers: share correct.")
    accuracy_low: float | None = Field(default=None, description="Wilson 95% lower bound.")
    accuracy_high: float | None = Field(default=None, description="Wilson 95% upper bound.")
    mae: float | None = Field(default=None, description="Regressors: mean absolute error.")
    delay_p50_seconds: float | None = Field(default=None, description="Prediction to label.")
    delay_p95_seconds: float | None = None
    rating_ratio: float | None = Field(default=None, description="up / (up + down).")
    conflicts: int = Field(ge=0, description="Labelled predictions whose feedback disagreed.")
    measured_at: Timestamp = Field(default_factory=utc_now)
