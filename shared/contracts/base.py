"""Base class and field types every wire message shares."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

ModelName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[a-z0-9][a-z0-9._-]*$"),
    Field(description="Registered model name: lower case letters, digits, '.', '_' or '-'."),
]
RequestId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$"),
    Field(description="Caller-chosen id of the prediction job; the idempotency key."),
]
VersionNumber = Annotated[int, Field(ge=1, description="Model version number, from 1.")]
Timestamp = Annotated[AwareDatetime, Field(description="RFC 3339 timestamp with offset.")]
FeatureValue = float | int | str | bool | None
Label = Annotated[str | int | float | bool, Field(description="A class label or target value.")]


def utc_now() -> datetime:
    """Now, timezone-aware, so every timestamp on the wire carries its offset."""
    return datetime.now(UTC)


def new_id() -> str:
    """A fresh random id for messages that need one."""
    return uuid.uuid4().hex


class WireModel(BaseModel):
    """A message on a Kafka topic.

    Unknown fields are ignored, so producers may add optional fields without breaking
    older consumers; messages are immutable once built.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
