"""Streams for the feedback join: requests, their predictions, and feedback about them."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.feedback.bootstrap import FeedbackService
from services.feedback.settings import FeedbackSettings
from shared.contracts import (
    DeadLetter,
    Feedback,
    LabelledExample,
    Prediction,
    PredictionRequest,
)
from shared.contracts.predictions import ClassifierOutput, RegressorOutput
from shared.kafka.codec import decode
from shared.kafka.publisher import Publisher
from shared.topics import DEAD_LETTERS, FEEDBACK, LABELS, PREDICTIONS, REQUESTS
from tests.support.topic_reader import read_records

IRIS = ("setosa", "versicolor", "virginica")
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def request(
    request_id: str, *, model: str = "iris", routing_key: str | None = None
) -> PredictionRequest:
    return PredictionRequest(
        request_id=request_id,
        model=model,
        inputs={"sepal_length": 5.1, "petal_width": 0.2},
        routing_key=routing_key,
        created_at=T0,
    )


def classified(
    request_id: str,
    label: str,
    *,
    version: int = 1,
    variant: str = "production",
    model: str = "iris",
    classes: tuple[str, ...] = IRIS,
    routing_key: str | None = None,
    seconds: float = 1.0,
) -> Prediction:
    probabilities = {name: (0.8 if name == label else 0.2 / (len(classes) - 1)) for name in classes}
    return Prediction(
        request_id=request_id,
        model=model,
        version=version,
        variant=variant,  # type: ignore[arg-type]
        status="ok",
        output=ClassifierOutput(label=label, probabilities=probabilities),
        latency_ms=1.0,
        routing_key=routing_key,
        created_at=T0 + timedelta(seconds=seconds),
    )


def regressed(request_id: str, value: float, *, model: str = "price") -> Prediction:
    return Prediction(
        request_id=request_id,
        model=model,
        version=1,
        variant="production",
        status="ok",
        output=RegressorOutput(value=value),
        latency_ms=1.0,
        created_at=T0 + timedelta(seconds=1),
    )


def feedback(request_id: str, *, seconds: float = 60.0, **kind: Any) -> Feedback:
    values = {"source": "app", "created_at": T0 + timedelta(seconds=seconds)} | kind
    return Feedback(request_id=request_id, **values)


@dataclass
class FeedbackHarness:
    """A running feedback service and a producer onto its topics."""

    settings: FeedbackSettings
    service: FeedbackService
    publisher: Publisher
    bootstrap: str

    async def send_request(self, message: PredictionRequest) -> None:
        await self.publisher.publish(REQUESTS, message, key=message.partition_key)

    async def send_prediction(self, message: Prediction) -> None:
        await self.publisher.publish(PREDICTIONS, message, key=message.partition_key)

    async def send_feedback(self, message: Feedback) -> None:
        await self.publisher.publish(FEEDBACK, message, key=message.request_id)

    async def served(self, request_id: str, label: str, **options: Any) -> None:
        """A request and its production prediction, as the inference worker leaves them."""
        await self.send_request(request(request_id, routing_key=options.get("routing_key")))
        await self.send_prediction(classified(request_id, label, **options))

    async def labels(self, expected: int, *, timeout: float = 40.0) -> list[LabelledExample]:
        records = await read_records(
            self.bootstrap, self.settings.topic(LABELS.name), expected=expected, timeout=timeout
        )
        return [decode(LABELS, record.value, record.headers) for record in records]

    async def dead_letters(self, expected: int, *, timeout: float = 40.0) -> list[DeadLetter]:
        records = await read_records(
            self.bootstrap,
            self.settings.topic(DEAD_LETTERS.name),
            expected=expected,
            timeout=timeout,
        )
        return [decode(DEAD_LETTERS, record.value, record.headers) for record in records]


def letter_feedback(letter: DeadLetter) -> dict[str, Any]:
    """The feedback a dead letter carries."""
    assert letter.value is not None
    loaded: dict[str, Any] = json.loads(base64.b64decode(letter.value))
    return loaded


def latest_per_variant(labels: list[LabelledExample]) -> dict[tuple[str, str], LabelledExample]:
    """What a consumer of `labels` keeps: the newest record per (request, variant)."""
    kept: dict[tuple[str, str], LabelledExample] = {}
    for example in sorted(labels, key=lambda example: example.published_at):
        kept[(example.request_id, example.variant)] = example
    return kept


async def eventually(
    condition: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)
