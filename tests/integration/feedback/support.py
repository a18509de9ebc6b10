"""Streams for the feedback join: requests, their predictions, and feedback about them."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer

from services.feedback.adapters.tables import FEEDBACK as FEEDBACK_ROWS
from services.feedback.bootstrap import FeedbackService
from services.feedback.settings import FeedbackSettings
from shared.contracts import (
    DeadLetter,
    Feedback,
    LabelledExample,
    LiveQuality,
    Prediction,
    PredictionRequest,
)
from shared.contracts.base import WireModel
from shared.contracts.predictions import ClassifierOutput, RegressorOutput
from shared.kafka.codec import decode
from shared.kafka.publisher import Publisher
from shared.topics import (
    DEAD_LETTERS,
    FEEDBACK,
    LABELS,
    LIVE_QUALITY,
    PREDICTIONS,
    REQUESTS,
    TopicSpec,
)
from tests.support.waiting import eventually

M = TypeVar("M", bound=WireModel)
IRIS = ("setosa", "versicolor", "virginica")
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
"""Recent: predictions older than the retention (7 days) are forgotten at the next sweep."""


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
        variant=variant,
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

    def http(self, key: str) -> httpx.AsyncClient:
        """A client of the service's HTTP API, authenticated with `key`."""
        assert self.service.health_port is not None, "start the service with a registry"
        return httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.service.health_port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10.0,
        )

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

    async def joined(self, expected: int, *, timeout: float = 60.0) -> None:
        """Wait until `expected` distinct feedback records are settled in the store (joined
        or refused): from then on, the labels on `labels` are final."""

        def settled() -> int:
            with self.service.engine.connect() as connection:
                return int(
                    connection.execute(
                        sa.select(sa.func.count()).where(
                            FEEDBACK_ROWS.c.state.in_(("joined", "refused"))
                        )
                    ).scalar_one()
                )

        async def enough() -> bool:
            return await asyncio.to_thread(settled) >= expected

        await eventually(enough, timeout=timeout, what=f"{expected} feedback settled")

    async def labels(self, expected: int, *, timeout: float = 60.0) -> list[LabelledExample]:
        """Label records until `expected` distinct (request, variant) pairs were labelled:
        a pair is labelled again whenever its request is joined again, or replayed."""
        return await self._read_until(
            LABELS, lambda e: (e.request_id, e.variant), expected, timeout
        )

    async def dead_letters(self, expected: int, *, timeout: float = 60.0) -> list[DeadLetter]:
        """Dead letters until `expected` distinct feedback records were dead-lettered
        (a batch replayed after a broker hiccup dead-letters its refusals again)."""
        return await self._read_until(DEAD_LETTERS, _letter_key, expected, timeout)

    async def quality(
        self, wanted: Callable[[LiveQuality], bool], *, timeout: float = 60.0
    ) -> LiveQuality:
        """The first `live-quality` record that `wanted` accepts."""
        async with aclosing(self._polls(LIVE_QUALITY, timeout, idle_ms=200)) as polls:
            async for polled in polls:
                for message in polled:
                    if wanted(message):
                        return message
        raise AssertionError(f"no wanted live-quality record within {timeout:g} s")

    async def _read_until(
        self, spec: TopicSpec[M], key: Callable[[M], object], expected: int, timeout: float
    ) -> list[M]:
        messages: list[M] = []
        async with aclosing(self._polls(spec, timeout, idle_ms=500)) as polls:
            async for polled in polls:
                messages.extend(polled)
                if not polled and len({key(message) for message in messages}) >= expected:
                    return messages  # enough, and nothing more came for a while
        seen = len({key(message) for message in messages})
        raise AssertionError(f"{spec.name}: {seen} of {expected} expected within {timeout:g} s")

    async def _polls(
        self, spec: TopicSpec[M], timeout: float, *, idle_ms: int
    ) -> AsyncGenerator[list[M], None]:
        """What each poll of the topic brings (from its start), until `timeout` passed."""
        consumer = AIOKafkaConsumer(
            self.settings.topic(spec.name),
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=idle_ms)
                yield [decode(spec, r.value, r.headers) for rs in batch.values() for r in rs]
        finally:
            await consumer.stop()


def _letter_key(letter: DeadLetter) -> str:
    """The feedback id a dead letter carries; its message when the value was cut short."""
    try:
        return str(letter_feedback(letter)["feedback_id"])
    except ValueError:
        return letter.error_message


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
