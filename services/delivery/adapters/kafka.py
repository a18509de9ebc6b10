"""Kafka side of delivery: `predictions` records become typed messages here, and only here.

The shared consume loop commits a batch's offsets after it is recorded (at-least-once);
recording is idempotent by request id, so a batch read twice delivers nothing twice.
"""

from __future__ import annotations

import logging

from aiokafka import ConsumerRecord

from services.delivery.service_layer.ingest import (
    SERVICE,
    ConsumedPrediction,
    RecordOrigin,
    RecordPredictions,
)
from services.delivery.settings import DeliverySettings
from shared.contracts import DeadLetter
from shared.kafka.codec import (
    OutgoingRecord,
    UndecodableMessage,
    dead_letter_for_record,
    decode,
    warn_unreadable,
)
from shared.kafka.headers import parse_headers
from shared.kafka.publisher import Publisher
from shared.runtime.consumer import ConsumerConfig
from shared.topics import DEAD_LETTERS, PREDICTIONS

log = logging.getLogger(__name__)
BATCH_TIMEOUT_MS = 500


class KafkaDeadLetters:
    """The `dead-letters` topic, through the shared durable publisher."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher

    async def publish(self, letter: DeadLetter, *, key: str | None) -> None:
        await self._publisher.publish(DEAD_LETTERS, letter, key=key)


def read_batch(
    records: list[ConsumerRecord[bytes, bytes]],
) -> tuple[list[ConsumedPrediction], list[DeadLetter]]:
    """Typed predictions, and a dead-letter record for each record no contract reads."""
    readable: list[ConsumedPrediction] = []
    unreadable: list[DeadLetter] = []
    for record in records:
        origin = RecordOrigin(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
        )
        headers = list(record.headers or ())
        try:
            prediction = decode(PREDICTIONS, record.value, headers)
        except UndecodableMessage as error:
            warn_unreadable(log, record, error)
            unreadable.append(dead_letter_for_record(record, error, service=SERVICE))
            continue
        readable.append(
            ConsumedPrediction(
                prediction=prediction,
                traceparent=parse_headers(headers).traceparent,
                origin=origin,
            )
        )
    return readable, unreadable


class RecordPredictionsProcess:
    """The delivery service's `process` for the shared consume loop: record a batch.

    It returns nothing to publish (dead letters go through the durable publisher while
    the batch is recorded), so the loop commits the batch's offsets once it returns.
    """

    def __init__(self, handler: RecordPredictions) -> None:
        self._handler = handler

    async def __call__(self, records: list[ConsumerRecord[bytes, bytes]]) -> list[OutgoingRecord]:
        readable, unreadable = read_batch(records)
        await self._handler.handle(readable, unreadable)
        return []


def predictions_consumer_config(settings: DeliverySettings) -> ConsumerConfig:
    """How delivery reads `predictions`: a group, at-least-once, offsets after recording."""
    return ConsumerConfig(
        bootstrap=settings.kafka_bootstrap,
        topics=(settings.topic(PREDICTIONS.name),),
        group_id=settings.consumer_group,
        client_id=f"{settings.kafka_client_id}-delivery",
        batch_timeout_ms=BATCH_TIMEOUT_MS,
        max_batch_records=settings.consume_max_records,
        offset_reset=settings.consumer_offset_reset,
        client_options=settings.kafka_security.client_options(),
    )
