"""`requests`: prediction jobs published by the gateway or by producers directly."""

from __future__ import annotations

from typing import Annotated

from pydantic import AnyHttpUrl, Field

from shared.contracts.base import (
    FeatureValue,
    ModelName,
    RequestId,
    Timestamp,
    VersionNumber,
    WireModel,
    utc_now,
)


class Callback(WireModel):
    """Where the result is delivered by signed webhook."""

    url: AnyHttpUrl = Field(description="HTTP(S) URL that receives the prediction by POST.")


class PredictionRequest(WireModel):
    """A prediction job: which model, which inputs, where to deliver the answer."""

    request_id: RequestId
    model: ModelName
    version: VersionNumber | None = Field(
        default=None, description="Pin a version; otherwise the deployment routes the request."
    )
    inputs: Annotated[
        dict[str, FeatureValue],
        Field(min_length=1, description="Feature name -> value, as in the model's signature."),
    ]
    callback: Callback | None = None
    routing_key: str | None = Field(
        default=None,
        max_length=256,
        description="Entity id that keeps canary assignment sticky; defaults to request_id.",
    )
    created_at: Timestamp = Field(default_factory=utc_now)

    @property
    def partition_key(self) -> str:
        """The Kafka key: the routing key, else the request id."""
        return self.routing_key or self.request_id

    @property
    def callback_url(self) -> str | None:
        """The callback URL as text (normalised by validation), or None."""
        return str(self.callback.url) if self.callback is not None else None
