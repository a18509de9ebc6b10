"""Record a consumed batch of predictions; the database, not Kafka, schedules the webhooks."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.exc import DataError, IntegrityError

from services.delivery.adapters.metrics import DeliveryMetrics
from shared.contracts import DeadLetter, Prediction
from shared.jobstore.store import JobStore

log = logging.getLogger(__name__)
SERVICE = "delivery"


class DeadLetterSink(Protocol):
    """Where records the service gives up on go (the `dead-letters` topic)."""

    async def publish(self, letter: DeadLetter, *, key: str | None) -> None: ...


@dataclass(frozen=True)
class RecordOrigin:
    """Where a record came from, so a dead-letter record can point back at it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class ConsumedPrediction:
    prediction: Prediction
    traceparent: str | None
    origin: RecordOrigin


class RecordPredictions:
    """Handles one batch: dead-letters first, then one store transaction for the rest.

    Returns only when everything is durable (dead letters acknowledged by Kafka, results
    committed), so the caller may commit the batch's offsets afterwards. Failures that
    may pass (database or broker down) propagate, and the caller retries the batch.
    """

    def __init__(
        self,
        store: JobStore,
        dead_letters: DeadLetterSink,
        metrics: DeliveryMetrics,
        *,
        on_due: Callable[[], None],
    ) -> None:
        self._store = store
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._on_due = on_due

    async def handle(
        self, readable: Sequence[ConsumedPrediction], unreadable: Sequence[DeadLetter]
    ) -> None:
        for letter in unreadable:
            await self._dead_letters.publish(letter, key=letter.key)
            self._metrics.records_dead_lettered += 1
        if not readable:
            return
        try:
            due = await asyncio.to_thread(self._record, readable)
        except (DataError, IntegrityError):
            log.warning("batch rejected by the database; recording predictions one by one")
            due = await self._record_one_by_one(readable)
        self._metrics.predictions_recorded += len(readable)
        if due:
            self._on_due()

    def _record(self, batch: Sequence[ConsumedPrediction]) -> list[str]:
        traceparents = {
            item.prediction.request_id: item.traceparent for item in batch if item.traceparent
        }
        return self._store.record_predictions(
            [item.prediction for item in batch], traceparents=traceparents
        )

    async def _record_one_by_one(self, batch: Sequence[ConsumedPrediction]) -> list[str]:
        """Find the prediction the database will not take and dead-letter it alone."""
        due: list[str] = []
        for item in batch:
            try:
                due += await asyncio.to_thread(self._record, [item])
            except (DataError, IntegrityError) as error:
                origin = item.origin
                letter = DeadLetter(
                    source_topic=origin.topic,
                    partition=origin.partition,
                    offset=origin.offset,
                    key=origin.key.decode("utf-8", errors="replace") if origin.key else None,
                    value=base64.b64encode(origin.value).decode() if origin.value else None,
                    error_code="unrecordable",
                    error_message=f"the job store rejected the prediction: {error.orig}",
                    service=SERVICE,
                )
                log.error(
                    "prediction %s rejected by the job store; dead-lettered",
                    item.prediction.request_id,
                    extra={"request_id": item.prediction.request_id},
                )
                await self._dead_letters.publish(letter, key=letter.key)
                self._metrics.records_dead_lettered += 1
        return due
