"""`drift-alerts`: evidence that a model's world has changed, for analysts and retraining."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shared.contracts.base import ModelName, Timestamp, VersionNumber, WireModel, new_id, utc_now

DriftKind = Literal["data", "prediction", "concept", "performance"]
Severity = Literal["warning", "critical"]


class DriftWindow(WireModel):
    """The stretch of the stream the statistic was computed on."""

    size: int = Field(ge=1, description="Number of observations in the window.")
    start: Timestamp | None = None
    end: Timestamp | None = None


class DriftAlert(WireModel):
    """A drift statistic that crossed its threshold, with the evidence behind it."""

    alert_id: str = Field(default_factory=new_id)
    model: ModelName
    version: VersionNumber
    kind: DriftKind
    feature: str | None = Field(default=None, description="The drifting feature, if any.")
    method: str = Field(description="Detector or test, e.g. psi, ks, adwin, page_hinkley.")
    statistic: float
    threshold: float
    severity: Severity
    window: DriftWindow
    evidence: dict[str, Any] = Field(
        default_factory=dict, description="Numbers that let an analyst check the alert."
    )
    detected_at: Timestamp = Field(default_factory=utc_now)
