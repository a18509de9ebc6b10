"""`predictions`: one answer per request and serving variant."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from shared.contracts.base import (
    Label,
    ModelName,
    RequestId,
    Timestamp,
    VersionNumber,
    WireModel,
    utc_now,
)
from shared.contracts.requests import Callback

Variant = Literal["production", "canary", "shadow"]
PredictionStatus = Literal["ok", "error"]


class ErrorCode:
    """The error codes a prediction may carry, so callers can branch on them."""

    INVALID_INPUT = "invalid_input"
    UNKNOWN_MODEL = "unknown_model"
    UNKNOWN_VERSION = "unknown_version"
    VERSION_REJECTED = "version_rejected"
    NO_DEPLOYMENT = "no_deployment"
    UNDECODABLE = "undecodable"
    MODEL_FAILURE = "model_failure"
    TOO_LARGE = "too_large"
    """The answer would not fit in a Kafka record; this small error stands in for it."""
    INTERNAL_ERROR = "internal_error"
    """Serving this request hit a fault of the service; the rest of its batch was served."""


class ClassifierOutput(WireModel):
    """A classifier's answer: the label and the probability of each class."""

    label: Label
    probabilities: dict[str, float] = Field(description="Class (as text) -> probability.")


class RegressorOutput(WireModel):
    """A regressor's answer."""

    value: float


class PredictionError(WireModel):
    """Why a request got no output."""

    code: str = Field(description="Machine-readable reason, e.g. invalid_input.")
    message: str = Field(description="Human-readable detail naming what was wrong.")


class Prediction(WireModel):
    """The result of one request served by one model version."""

    request_id: RequestId
    model: ModelName
    version: VersionNumber
    variant: Variant
    status: PredictionStatus
    output: ClassifierOutput | RegressorOutput | None = None
    error: PredictionError | None = None
    latency_ms: float = Field(ge=0, description="Time from request creation to this answer.")
    routing_key: str | None = None
    callback: Callback | None = Field(
        default=None, description="Copied from the request so delivery needs no lookup."
    )
    callback_seal: str | None = Field(
        default=None,
        max_length=64,
        description="HMAC of request id and callback URL by the worker that served the "
        "request; delivery sends a webhook only to a sealed callback or one the gateway "
        "recorded for the job.",
    )
    created_at: Timestamp = Field(default_factory=utc_now)

    @model_validator(mode="after")
    def _status_matches_payload(self) -> Self:
        if self.status == "ok" and (self.output is None or self.error is not None):
            raise ValueError("status 'ok' needs an output and no error")
        if self.status == "error" and (self.error is None or self.output is not None):
            raise ValueError("status 'error' needs an error and no output")
        return self

    @property
    def partition_key(self) -> str:
        """Same key as the request, so per-entity ordering holds end to end."""
        return self.routing_key or self.request_id
