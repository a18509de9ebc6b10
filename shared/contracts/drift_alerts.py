"""`drift-alerts`: evidence that a model's world has changed, for analysts and retraining.

Alerts come in episodes: one record with status "open" when a detector crosses its
threshold, at most one "escalated" record if the severity rises, and one "resolved"
record when the statistic has stayed back under its lower threshold. All records of an
episode share its `episode_id`; `alert_id` is unique per record and stable across
replays, so a consumer that sees one twice can drop the copy.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shared.contracts.base import ModelName, Timestamp, VersionNumber, WireModel, new_id, utc_now
from shared.contracts.predictions import Variant

DriftKind = Literal["data", "prediction", "concept", "performance"]
Severity = Literal["warning", "critical"]
EpisodeStatus = Literal["open", "escalated", "resolved"]


class DriftWindow(WireModel):
    """The stretch of the stream the statistic was computed on."""

    size: int = Field(ge=1, description="Number of observations in the window.")
    start: Timestamp | None = None
    end: Timestamp | None = None


class FeatureDrift(WireModel):
    """One feature's standing in the same check, so an analyst sees what else moved."""

    feature: str
    method: str
    statistic: float
    threshold: float
    p_value: float | None = None


class DriftAlert(WireModel):
    """A drift statistic that crossed its threshold, with the evidence behind it."""

    alert_id: str = Field(default_factory=new_id)
    episode_id: str = Field(
        default_factory=new_id,
        description="Shared by the open, escalated and resolved records of one episode.",
    )
    status: EpisodeStatus = "open"
    model: ModelName
    version: VersionNumber
    variant: Variant | None = Field(
        default=None, description="For concept and performance drift: the serving variant."
    )
    kind: DriftKind
    feature: str | None = Field(default=None, description="The drifting feature, if any.")
    method: str = Field(description="Detector or test, e.g. cusum, psi, ks, bernoulli_cusum.")
    statistic: float
    threshold: float
    severity: Severity
    window: DriftWindow
    reference: dict[str, Any] = Field(
        default_factory=dict,
        description="The reference's summary: mean, std, quantiles or frequencies, "
        "or the baseline error rate.",
    )
    current: dict[str, Any] = Field(
        default_factory=dict, description="The same summary over the current window."
    )
    top_features: list[FeatureDrift] = Field(
        default_factory=list, description="The most drifting features of the same check."
    )
    evidence: dict[str, Any] = Field(
        default_factory=dict, description="Further numbers that let an analyst check the alert."
    )
    opened_at: Timestamp | None = Field(
        default=None, description="When the episode opened (on every record of it)."
    )
    detected_at: Timestamp = Field(default_factory=utc_now)
