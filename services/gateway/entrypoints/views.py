"""What the HTTP API accepts and returns."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts import Callback
from shared.contracts.base import FeatureValue, RequestId, VersionNumber
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


class FeedbackAccepted(BaseModel):
    feedback_id: str
    request_id: str
    status: str = "accepted"


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer has this shape, saying what was wrong."""

    error: ErrorDetail
