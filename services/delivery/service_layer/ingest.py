"""Record a consumed batch of predictions; the database, not Kafka, schedules the webhooks."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Protocol

from sqlalchemy.exc import DataError, IntegrityError

from services.delivery.adapters.metrics import DeliveryMetrics
from shared.callback_seal import is_sealed
from shared.contracts import DeadLetter, Prediction
from shared.jobstore.deliveries import DueDelivery, RecordedAnswers
from shared.jobstore.store import JobStore
from shared.store_thread import RunInThread

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


class ClaimedWebhooks(Protocol):
    """Takes the webhooks ingest claims while recording them (the dispatcher)."""

    def reserve(self, wanted: int) -> int:
        """How many of `wanted` it can take now; each reservation ends with one `take`."""
        ...

    def take(self, jobs: Sequence[DueDelivery], *, reserved: int) -> None: ...


class RecordPredictions:
    """Handles one batch: dead-letters first, then one store transaction for the rest.

    Returns only when everything is durable (dead letters acknowledged by Kafka, results
    committed), so the caller may commit the batch's offsets afterwards. Failures that
    may pass (database or broker down) propagate, and the caller retries the batch.

    With `claimed` given, the transaction that records the predictions also claims their
    webhooks (as many as `claimed` has room for) and hands them over in memory: they go
    out right after the commit, and the schedule in the store still covers a crash.
    Webhooks left unclaimed are announced with `on_due`.
    """

    def __init__(
        self,
        store: JobStore,
        dead_letters: DeadLetterSink,
        metrics: DeliveryMetrics,
        *,
        on_due: Callable[[], None],
        claimed: ClaimedWebhooks | None = None,
        lease: timedelta | None = None,
        run: RunInThread = asyncio.to_thread,
        callback_seal_key: bytes | None = None,
    ) -> None:
        if (claimed is None) != (lease is None):
            raise ValueError("claiming at ingest needs both `claimed` and its `lease`")
        self._store = store
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._on_due = on_due
        self._claimed = claimed
        self._lease = lease
        self._run = run
        self._seal_key = callback_seal_key

    async def handle(
        self, readable: Sequence[ConsumedPrediction], unreadable: Sequence[DeadLetter]
    ) -> None:
        for letter in unreadable:
            await self._dead_letters.publish(letter, key=letter.key)
            self._metrics.records_dead_lettered += 1
        if not readable:
            return
        readable = self._trusted_callbacks_only(readable)
        room = self._claimed.reserve(len(readable)) if self._claimed is not None else 0
        claimed: list[DueDelivery] = []
        try:
            try:
                recorded = await self._run(self._record, readable, room)
                due, claimed = recorded.due, recorded.claimed
            except (DataError, IntegrityError):
                log.warning("batch rejected by the database; recording predictions one by one")
                due = await self._record_one_by_one(readable)
        finally:
            if self._claimed is not None:
                self._claimed.take(claimed, reserved=room)
        self._metrics.predictions_recorded += len(readable)
        if len(due) > len(claimed):
            self._on_due()

    def _trusted_callbacks_only(
        self, batch: Sequence[ConsumedPrediction]
    ) -> Sequence[ConsumedPrediction]:
        """Drop every callback no worker sealed: a record forged on `predictions` must not
        make us sign and send anything to a URL of its choosing. (A gateway job keeps the
        callback the gateway recorded either way.)"""
        dropped = 0
        kept: list[ConsumedPrediction] = []
        for item in batch:
            prediction = item.prediction
            callback = prediction.callback
            if callback is None and prediction.callback_seal is None:
                kept.append(item)
                continue
            trusted = (
                callback is not None
                and self._seal_key is not None
                and is_sealed(
                    self._seal_key,
                    prediction.request_id,
                    str(callback.url),
                    prediction.callback_seal,
                )
            )
            dropped += 0 if trusted else 1
            # The seal is ours, not the receiver's: it is never stored nor sent.
            update = {"callback_seal": None} | ({} if trusted else {"callback": None})
            kept.append(replace(item, prediction=prediction.model_copy(update=update)))
        if dropped:
            log.warning(
                "%d callbacks on %s carried no valid seal; only a callback the gateway "
                "recorded is used for those jobs",
                dropped,
                batch[0].origin.topic,
            )
        return kept

    def _record(self, batch: Sequence[ConsumedPrediction], claim_limit: int) -> RecordedAnswers:
        traceparents = {
            item.prediction.request_id: item.traceparent for item in batch if item.traceparent
        }
        return self._store.record_answers(
            [item.prediction for item in batch],
            traceparents=traceparents,
            claim_lease=self._lease,
            claim_limit=claim_limit,
        )

    async def _record_one_by_one(self, batch: Sequence[ConsumedPrediction]) -> list[str]:
        """Find the prediction the database will not take and dead-letter it alone."""
        due: list[str] = []
        for item in batch:
            try:
                due += (await self._run(self._record, [item], 0)).due
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
