"""Streams for the drift service: requests with chosen inputs, labels with chosen errors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
from aiokafka import AIOKafkaConsumer

from devtools.live_registry import LiveRegistry
from services.drift.bootstrap import DriftService
from services.drift.settings import DriftSettings
from shared.contracts import DriftAlert, LabelledExample, PredictionRequest
from shared.contracts.base import WireModel
from shared.kafka.codec import decode
from shared.kafka.publisher import Publisher
from shared.topics import DRIFT_ALERTS, LABELS, REQUESTS, TopicSpec
from tests.support.waiting import eventually

CHUNK = 500
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def gaussian_rows(
    count: int, *, features: int, seed: int, shift: dict[str, float] | None = None
) -> list[dict[str, float]]:
    """Inputs like the training data (independent standard normals), some features shifted."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((count, features))
    for name, amount in (shift or {}).items():
        data[:, int(name.removeprefix("x"))] += amount
    names = [f"x{index}" for index in range(features)]
    return [dict(zip(names, row, strict=True)) for row in data.tolist()]


def requests_for(
    model: str, rows: Sequence[dict[str, Any]], *, start: int = 0
) -> list[PredictionRequest]:
    """One request per row, a second apart in event time, keyed by their own ids."""
    return [
        PredictionRequest(
            request_id=f"r-{start + index}-{uuid.uuid4().hex[:6]}",
            model=model,
            inputs=row,
            created_at=T0 + timedelta(seconds=start + index),
        )
        for index, row in enumerate(rows)
    ]


def labels_for(model: str, correct: Sequence[bool], *, version: int = 1) -> list[LabelledExample]:
    return [
        LabelledExample(
            label_id=f"l-{index}-{uuid.uuid4().hex[:6]}",
            request_id=f"r-{index}",
            model=model,
            version=version,
            variant="production",
            inputs={"x0": 0.0},
            predicted="high",
            label="high" if right else "low",
            correct=right,
            strength="label",
            source="tests",
            authority="user",
            feedback_id=f"f-{index}",
            predicted_at=T0 + timedelta(seconds=index),
            labelled_at=T0 + timedelta(seconds=index, milliseconds=500),
        )
        for index, right in enumerate(correct)
    ]


@dataclass
class DriftHarness:
    settings: DriftSettings
    service: DriftService
    publisher: Publisher
    bootstrap: str
    registry: LiveRegistry

    async def publish(self, spec: TopicSpec[Any], messages: Sequence[WireModel]) -> None:
        """Send in concurrent chunks (the producer batches them), each acknowledged."""
        for start in range(0, len(messages), CHUNK):
            await asyncio.gather(
                *(
                    self.publisher.publish(spec, message, key=_key(message))
                    for message in messages[start : start + CHUNK]
                )
            )

    async def send_requests(self, requests: Sequence[PredictionRequest]) -> None:
        await self.publish(REQUESTS, requests)

    async def send_labels(self, labels: Sequence[LabelledExample]) -> None:
        await self.publish(LABELS, labels)

    def measured_events(self, model: str, version: int = 1) -> int:
        """Requests the committed data-drift state has counted."""
        record = self.service.view.get(model, version)
        if record is None:
            return 0
        data = record.state.get("monitor", {}).get("data")
        return int(data["events"]) if data else 0

    def measured_labels(self, model: str, version: int = 1, variant: str = "production") -> int:
        record = self.service.view.get(model, version)
        if record is None:
            return 0
        concept = record.state.get("monitor", {}).get("concept", {}).get(variant)
        return int(concept["labels"]) if concept else 0

    async def until_measured(self, model: str, events: int, *, timeout: float = 60.0) -> None:
        async def done() -> bool:
            return self.measured_events(model) >= events

        try:
            await eventually(done, timeout=timeout, what=f"{events} requests measured")
        except AssertionError as late:
            counted = self.measured_events(model)
            raise AssertionError(
                f"{late}; {counted} measured; metrics:\n{self.service.metrics_text()}"
            ) from None

    async def alerts(self, *, settle_seconds: float = 1.0) -> list[DriftAlert]:
        """Every committed record on drift-alerts so far, read by a plain consumer."""
        return await read_alerts(
            self.bootstrap, self.settings.topic(DRIFT_ALERTS.name), settle_seconds
        )

    def api(self) -> httpx.AsyncClient:
        port = self.service.health_port
        assert port is not None
        return httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {self.registry.keys['reader']}"},
            timeout=10,
        )


async def read_alerts(bootstrap: str, topic: str, settle_seconds: float = 1.0) -> list[DriftAlert]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    found: list[DriftAlert] = []
    try:
        idle = 0.0
        while idle < settle_seconds:
            batch = await consumer.getmany(timeout_ms=250)
            records = [record for records in batch.values() for record in records]
            idle = idle + 0.25 if not records else 0.0
            found += [decode(DRIFT_ALERTS, record.value, record.headers) for record in records]
    finally:
        await consumer.stop()
    return found


def _key(message: WireModel) -> str | None:
    return getattr(message, "request_id", None)
