"""The topic catalogue: names, payloads, keys and retention, in one place.

Topic creation, codec, JSON Schemas and the AsyncAPI document are all derived from it,
so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shared.contracts import (
    DeadLetter,
    DriftAlert,
    DriftSketch,
    DriftStateRecord,
    Feedback,
    LabelledExample,
    LiveQuality,
    ModelEvent,
    Prediction,
    PredictionRequest,
    WireModel,
)

M = TypeVar("M", bound=WireModel)

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec(Generic[M]):
    """One Kafka topic of the platform and the contract of its messages."""

    name: str
    payload: type[M]
    event_type: str
    key: str
    description: str
    partitions: int
    retention_ms: int
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    cleanup_policy: str = "delete"

    @property
    def schema_file(self) -> str:
        """File name of the payload's JSON Schema under schemas/."""
        return f"{self.name}.schema.json"


REQUESTS: TopicSpec[PredictionRequest] = TopicSpec(
    name="requests",
    payload=PredictionRequest,
    event_type="io.modelbus.prediction.requested.v1",
    key="routing_key if given, else request_id (keeps canary assignment sticky per entity)",
    description="Prediction jobs, from the gateway or from producers directly.",
    partitions=8,
    retention_ms=7 * DAY_MS,
    producers=("gateway", "any producer"),
    consumers=("inference", "drift"),
)
PREDICTIONS: TopicSpec[Prediction] = TopicSpec(
    name="predictions",
    payload=Prediction,
    event_type="io.modelbus.prediction.completed.v1",
    key="same key as the request",
    description="One result per request and serving variant (production, canary, shadow).",
    partitions=8,
    retention_ms=7 * DAY_MS,
    producers=("inference",),
    consumers=("delivery", "drift", "feedback"),
)
FEEDBACK: TopicSpec[Feedback] = TopicSpec(
    name="feedback",
    payload=Feedback,
    event_type="io.modelbus.feedback.given.v1",
    key="request_id (co-partitioned with nothing; joined by the feedback service)",
    description="Explicit labels, ratings and implicit signals about predictions.",
    partitions=4,
    retention_ms=30 * DAY_MS,
    producers=("gateway", "any producer"),
    consumers=("feedback",),
)
DRIFT_ALERTS: TopicSpec[DriftAlert] = TopicSpec(
    name="drift-alerts",
    payload=DriftAlert,
    event_type="io.modelbus.drift.detected.v1",
    key="model name",
    description="Drift statistics that crossed their thresholds, with evidence.",
    partitions=1,
    retention_ms=90 * DAY_MS,
    producers=("drift",),
    consumers=("retraining", "analysts"),
)
MODEL_EVENTS: TopicSpec[ModelEvent] = TopicSpec(
    name="model-events",
    payload=ModelEvent,
    event_type="io.modelbus.model.changed.v1",
    key="model name (ordered per model)",
    description="Every change to model versions and deployments, published by the registry.",
    partitions=1,
    retention_ms=365 * DAY_MS,
    producers=("registry",),
    consumers=("inference", "drift", "retraining"),
)
LABELS: TopicSpec[LabelledExample] = TopicSpec(
    name="labels",
    payload=LabelledExample,
    event_type="io.modelbus.example.labelled.v1",
    key="request_id",
    description="Predictions joined with their ground-truth labels.",
    partitions=4,
    retention_ms=90 * DAY_MS,
    producers=("feedback",),
    consumers=("drift", "retraining"),
)
LIVE_QUALITY: TopicSpec[LiveQuality] = TopicSpec(
    name="live-quality",
    payload=LiveQuality,
    event_type="io.modelbus.quality.measured.v1",
    key="model name",
    description="Live accuracy (or MAE), coverage and label delay per model version and "
    "variant, measured from labels; the latest record per (model, version, variant) holds.",
    partitions=1,
    retention_ms=30 * DAY_MS,
    producers=("feedback",),
    consumers=("drift", "retraining"),
)
DRIFT_SKETCHES: TopicSpec[DriftSketch] = TopicSpec(
    name="drift-sketches",
    payload=DriftSketch,
    event_type="io.modelbus.drift.sketched.v1",
    key="model name (one judge sees every sketch of a model)",
    description="Internal to the drift service: sufficient statistics of each micro-batch of "
    "requests, predictions and labels, per model version, from the sketcher to the judge.",
    partitions=8,
    retention_ms=1 * DAY_MS,
    producers=("drift",),
    consumers=("drift",),
)
DRIFT_STATE: TopicSpec[DriftStateRecord] = TopicSpec(
    name="drift-state",
    payload=DriftStateRecord,
    event_type="io.modelbus.drift.state.v1",
    key="model name and version; written to the partition of the model's drift-sketches",
    description="Internal to the drift service: the judge's detector state per model version, "
    "written in the same transaction as the sketches it consumed (a compacted changelog).",
    partitions=8,
    retention_ms=365 * DAY_MS,
    producers=("drift",),
    consumers=("drift",),
    cleanup_policy="compact",
)
DEAD_LETTERS: TopicSpec[DeadLetter] = TopicSpec(
    name="dead-letters",
    payload=DeadLetter,
    event_type="io.modelbus.message.dead-lettered.v1",
    key="original key",
    description="Messages a service could not read or deliver, with the reason.",
    partitions=1,
    retention_ms=30 * DAY_MS,
    producers=("inference", "delivery", "drift", "feedback"),
    consumers=("operators",),
)

ALL_TOPICS: tuple[TopicSpec[Any], ...] = (
    REQUESTS,
    PREDICTIONS,
    FEEDBACK,
    DRIFT_ALERTS,
    MODEL_EVENTS,
    LABELS,
    LIVE_QUALITY,
    DRIFT_SKETCHES,
    DRIFT_STATE,
    DEAD_LETTERS,
)


def topic_by_name(name: str) -> TopicSpec[Any]:
    """The spec of a logical topic name; KeyError names the known topics."""
    for spec in ALL_TOPICS:
        if spec.name == name:
            return spec
    known = ", ".join(spec.name for spec in ALL_TOPICS)
    raise KeyError(f"unknown topic {name!r}; known topics: {known}")
