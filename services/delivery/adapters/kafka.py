"""Kafka side of delivery: read `predictions` in batches, publish to `dead-letters`.

The only place where predictions records become typed messages. Offsets are committed
after a batch is recorded (at-least-once); recording is idempotent by request id, so a
batch read twice after a crash or rebalance delivers nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from services.delivery.service_layer.ingest import (
    SERVICE,
    ConsumedPrediction,
    RecordOrigin,
    RecordPredictions,
)
from shared.contracts import DeadLetter
from shared.kafka.codec import UndecodableMessage, dead_letter_for_record, decode
from shared.kafka.headers import parse_headers
from shared.kafka.publisher import Publisher
from shared.kafka.security import PLAINTEXT, KafkaSecurity
from shared.topics import DEAD_LETTERS, PREDICTIONS

log = logging.getLogger(__name__)
RETRY_START_SECONDS = 0.5
RETRY_MAX_SECONDS = 15.0
COMMIT_SPACING_SECONDS = 0.1
"""Offsets of recorded batches are committed at most this often (see OffsetCommitter)."""


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


class OffsetCommitter(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits the offsets of recorded batches in the background, one commit at a time.

    Waiting for a commit after every batch held the next fetch back by a broker round trip
    and cost a commit per batch; here the loop goes on, and the offsets recorded meanwhile
    go out together, at most every `spacing` seconds. An offset is handed over only once
    its batch is recorded, so a crash can only make recorded predictions be read again,
    which changes and sends nothing. Before a rebalance takes partitions away, and at
    stop, everything recorded is committed.
    """

    def __init__(self, *, spacing_seconds: float) -> None:
        self._spacing = spacing_seconds
        self._pending: dict[TopicPartition, OffsetAndMetadata] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._one_at_a_time = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def attach(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer

    def recorded(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """These records are durable in the store: their offsets may be committed."""
        for record in records:
            self._advance(TopicPartition(record.topic, record.partition), record.offset + 1)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._commit_while_pending(), name="offset-commits")

    def _advance(self, partition: TopicPartition, offset: int) -> None:
        known = self._pending.get(partition)
        if known is None or known.offset < offset:
            self._pending[partition] = OffsetAndMetadata(offset, "")

    async def _commit_while_pending(self) -> None:
        while self._pending:
            await self.commit()
            await asyncio.sleep(self._spacing)

    async def commit(self) -> None:
        """Commit what is recorded so far (after any commit under way)."""
        async with self._one_at_a_time:
            offsets, self._pending = self._pending, {}
            if not offsets or self._consumer is None:
                return
            try:
                await self._consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError) as error:
                # A rebalance moved the partitions; their new owner re-reads the batch, and
                # recording it again changes nothing.
                log.warning("offset commit skipped after a rebalance: %s", error)
            except KafkaError:
                log.exception("offset commit failed; will try again with the next batch")
                for partition, offset in offsets.items():
                    self._advance(partition, offset.offset)

    async def stop(self) -> None:
        """Commit everything recorded, then end the background committer."""
        await self.commit()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.commit()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None


class PredictionsConsumer:
    """One member of the delivery consumer group: getmany, record, hand offsets over, repeat."""

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
        commit_spacing_seconds: float = COMMIT_SPACING_SECONDS,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self._handler = handler
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "group_id": group_id,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": offset_reset,
            **security.client_options(),
        }
        self._topic = topic
        self._max_records = max_records
        self._offsets = OffsetCommitter(spacing_seconds=commit_spacing_seconds)
        self._consumer: AIOKafkaConsumer | None = None
        self._stopping = False
        self.started = False

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(**self._options)
        self._consumer.subscribe([self._topic], listener=self._offsets)
        self._offsets.attach(self._consumer)
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
            self._offsets.recorded(records)

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

    def request_stop(self) -> None:
        """Finish the batch at hand (recorded and committed, or left for a re-read), then end."""
        self._stopping = True

    async def stop(self) -> None:
        self._stopping = True
        if self._consumer is not None:
            await self._offsets.stop()
            await self._consumer.stop()
            self._consumer = None
        self.started = False
