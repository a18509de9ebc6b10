"""Wire contracts: one pydantic model per Kafka topic payload."""

from shared.contracts.base import WireModel
from shared.contracts.dead_letters import DeadLetter
from shared.contracts.drift_alerts import DriftAlert, DriftWindow, FeatureDrift
from shared.contracts.drift_sketches import DriftSketch, DriftStateRecord, SketchSource
from shared.contracts.feedback import Feedback
from shared.contracts.labels import LabelledExample
from shared.contracts.model_events import DeploymentState, ModelEvent
from shared.contracts.predictions import (
    ClassifierOutput,
    ErrorCode,
    Prediction,
    PredictionError,
    RegressorOutput,
)
from shared.contracts.quality import LiveQuality
from shared.contracts.requests import Callback, PredictionRequest

__all__ = [
    "Callback",
    "ClassifierOutput",
    "DeadLetter",
    "DeploymentState",
    "DriftAlert",
    "DriftSketch",
    "DriftStateRecord",
    "DriftWindow",
    "ErrorCode",
    "FeatureDrift",
    "Feedback",
    "LabelledExample",
    "LiveQuality",
    "ModelEvent",
    "Prediction",
    "PredictionError",
    "PredictionRequest",
    "RegressorOutput",
    "SketchSource",
    "WireModel",
]
