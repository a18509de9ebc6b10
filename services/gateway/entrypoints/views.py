"""What the HTTP API accepts and returns."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts import Callback
from shared.contracts.base import FeatureValue, Label, RequestId, VersionNumber
from shared.contracts.feedback import ImplicitSignal, Rating, require_one_kind
from shared.jobstore.views import JobStatus


class PredictBody(BaseModel):
    """A prediction job as a caller posts it; the model is in the path."""

    model_config = ConfigDict(extra="forbid")

    request_id: RequestId | None = Field(
        default=None,
        description="Idempotency key: a retry with the same id is not queued twice. "
        "Defaults to the Idempotency-Key header, else a new id.",
    )
    inputs: Annotated[
        dict[str, FeatureValue],
        Field(min_length=1, description="Feature name -> value, as in the model's signature."),
    ]
    version: VersionNumber | None = Field(
        default=None, description="Pin a version; otherwise the deployment routes the request."
    )
    callback: Callback | None = Field(
        default=None, description="Where the result is delivered by signed webhook."
    )
    routing_key: Annotated[str, Field(min_length=1, max_length=256)] | None = Field(
        default=None,
        description="Entity id that keeps canary assignment sticky; defaults to request_id.",
    )


class JobAccepted(BaseModel):
    """The job is queued (or was already): poll `status_url` or wait for the webhook."""

    request_id: str
    status: JobStatus
    status_url: str


_SET_BY_THE_GATEWAY = ("source", "authority")


class FeedbackBody(BaseModel):
    """Feedback as a caller posts it: exactly one of an explicit label, a rating or an
    implicit signal. Its source is the caller's API key, never a field of the body."""

    model_config = ConfigDict(extra="forbid")

    request_id: RequestId = Field(description="The job the feedback is about.")
    feedback_id: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        default=None, description="Idempotency key downstream; a new one when omitted."
    )
    label: Label | None = Field(
        default=None, description="The true answer: one of a classifier's classes, or a number."
    )
    rating: Rating | None = None
    signal: ImplicitSignal | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_source_in_the_body(cls, data: Any) -> Any:
        if isinstance(data, dict):
            sent = [name for name in _SET_BY_THE_GATEWAY if name in data]
            if sent:
                raise ValueError(
                    f"{' and '.join(sent)} may not be sent: the source comes from the API key "
                    "(its name), and the authority from its role"
                )
        return data

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Self:
        require_one_kind(self)
        return self


class FeedbackAccepted(BaseModel):
    feedback_id: str
    request_id: str
    source: str = Field(description="The API key name the feedback was published under.")
    authority: str = Field(description="reviewer for a reviewer's key (or above), else user.")
    status: str = "accepted"


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer has this shape, saying what was wrong."""

    error: ErrorDetail
