"""What a worker answers, as plain values.

A worker builds one answer per request, hundreds of thousands a minute; plain slotted
dataclasses cost a fraction of validated contract models there. Everything in them
comes from a validated request and a model's output, and the Kafka adapter writes them
in the `predictions` contract's shape (tests hold the two together).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.contracts.predictions import PredictionStatus, Variant

LabelValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Classified:
    """A classifier's answer: the label and each class's probability (class as text)."""

    label: LabelValue
    probabilities: dict[str, float]


@dataclass(frozen=True, slots=True)
class Regressed:
    """A regressor's answer."""

    value: float


Output = Classified | Regressed


@dataclass(frozen=True, slots=True)
class AnswerError:
    """Why a request got no output: a code callers branch on and a readable reason."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Answer:
    """One request's answer by one version, as it goes on `predictions`."""

    request_id: str
    model: str
    version: int
    variant: Variant
    output: Output | None
    error: AnswerError | None
    latency_ms: float
    routing_key: str | None
    callback_url: str | None
    created_at: datetime

    @property
    def status(self) -> PredictionStatus:
        return "ok" if self.error is None else "error"

    @property
    def partition_key(self) -> str:
        """Same key as the request, so per-entity ordering holds end to end."""
        return self.routing_key or self.request_id
