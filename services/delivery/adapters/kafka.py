"""Kafka side of delivery: read `predictions` in batches, publish to `dead-letters`.

The only place where predictions records become typed messages. Offsets are committed
after a batch is recorded (at-least-once); recording is idempotent by request id, so a
batch read twice after a crash or rebalance delivers nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from services.delivery.service_layer.ingest import (
    SERVICE,
    ConsumedPrediction,
    RecordOrigin,
    RecordPredictions,
)
from shared.contracts import DeadLetter
from shared.kafka.codec import UndecodableMessage, dead_letter_for, decode
from shared.kafka.headers import parse_headers
from shared.kafka.publisher import Publisher
from shared.topics import DEAD_LETTERS, PREDICTIONS

log = logging.getLogger(__name__)
RETRY_START_SECONDS = 0.5
RETRY_MAX_SECONDS = 15.0


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
            log.warning(
                "unreadable record at %s[%d]@%d: %s",
                record.topic,
                record.partition,
                record.offset,
                error.message,
            )
            unreadable.append(
                dead_letter_for(
                    source_topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key,
                    value=record.value,
                    error=error,
                    service=SERVICE,
                )
            )
            continue
        readable.append(
            ConsumedPrediction(
                prediction=prediction,
                traceparent=parse_headers(headers).traceparent,
                origin=origin,
            )
        )
    return readable, unreadable


class PredictionsConsumer:
    """One member of the delivery consumer group: getmany, record, commit, repeat."""

    def __init__(
        self,
        handler: RecordPredictions,
        *,
        bootstrap: str,
        topic: str,
        group_id: str,
        client_id: str,
        max_records: int,
        offset_reset: Literal["earliest", "latest"] = "earliest",
    ) -> None:
        self._handler = handler
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "group_id": group_id,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": offset_reset,
        }
        self._topic = topic
        self._max_records = max_records
        self._consumer: AIOKafkaConsumer | None = None
        self._stopping = False
        self.started = False

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(self._topic, **self._options)
        await self._consumer.start()
        self.started = True

    async def run(self) -> None:
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("start the consumer before running it")
        while not self._stopping:
            batches = await consumer.getmany(timeout_ms=500, max_records=self._max_records)
            records = [record for batch in batches.values() for record in batch]
            if not records:
                continue
            readable, unreadable = read_batch(records)
            if not await self._handle_until_done(readable, unreadable):
                return  # stopping: the batch is not committed and will be read again
            await self._commit(consumer, records)

    async def _handle_until_done(
        self, readable: list[ConsumedPrediction], unreadable: list[DeadLetter]
    ) -> bool:
        """Retry the batch while the store or broker is away; False if stopped meanwhile."""
        delay = RETRY_START_SECONDS
        while not self._stopping:
            try:
                await self._handler.handle(readable, unreadable)
                return True
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not record a batch of predictions; retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
        return False

    async def _commit(
        self, consumer: AIOKafkaConsumer, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            known = offsets.get(partition)
            if known is None or known.offset <= record.offset:
                offsets[partition] = OffsetAndMetadata(record.offset + 1, "")
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as error:
            # A rebalance moved the partitions; their new owner re-reads the batch, and
            # recording it again changes nothing.
            log.warning("offset commit skipped after a rebalance: %s", error)
        except KafkaError:
            log.exception("offset commit failed; the batch may be read again")

    def request_stop(self) -> None:
        """Finish the batch at hand (recorded and committed, or left for a re-read), then end."""
        self._stopping = True

    async def stop(self) -> None:
        self._stopping = True
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        self.started = False
