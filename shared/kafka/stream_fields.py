"""Tolerant readers of the busy streams: the few fields a downstream service keeps.

Services that read every request or prediction (feedback, drift) decode only what they
use; the contract's other fields (callbacks, seals) and their validation were most of the
cost of decoding. Each class is a subset of its contract, checked by the same codec.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contracts.base import FeatureValue, Label, ModelName, RequestId, VersionNumber
from shared.contracts.labels import LabelStrength
from shared.contracts.predictions import PredictionStatus, Variant

StoredVersion = Annotated[VersionNumber, Field(le=2**31 - 1)]
"""A version a 32-bit integer column (PostgreSQL's) or a state record holds."""


class _Fields(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RequestFields(_Fields):
    """What is kept of a `requests` record."""

    request_id: RequestId
    model: ModelName
    version: VersionNumber | None = None
    inputs: dict[str, FeatureValue] = Field(min_length=1)
    created_at: AwareDatetime


class ClassifierFields(_Fields):
    label: Label
    probabilities: dict[str, float]


class RegressorFields(_Fields):
    value: float


class PredictionFields(_Fields):
    """What is kept of a `predictions` record."""

    request_id: RequestId
    model: ModelName
    version: StoredVersion
    variant: Variant
    status: PredictionStatus
    output: ClassifierFields | RegressorFields | None = None
    created_at: AwareDatetime


class LabelFields(_Fields):
    """What is kept of a `labels` record."""

    label_id: str = Field(max_length=512)
    model: ModelName
    version: StoredVersion
    variant: Variant
    correct: bool | None = None
    strength: LabelStrength
    conflicting: bool = False
    labelled_at: AwareDatetime
