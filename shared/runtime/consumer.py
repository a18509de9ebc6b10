"""One consumer-group member: getmany, the service's `process`, produce, commit, repeat.

Every Kafka service runs on this loop and supplies only `process(records) -> outgoing
records`. Nothing is committed before its outputs are acknowledged: at-least-once
commits in batch order while the next batches are processed (a failure rewinds), and
exactly-once produces outputs and offsets in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    TransactionalIdAuthorizationFailed,
    UnsupportedVersionError,
)
from aiokafka.structs import ConsumerRecord

from shared.kafka.codec import OutgoingRecord
from shared.kafka.producing import Shrink, queue_records
from shared.runtime.offsets import BatchOffsets, CommitLedger
from shared.runtime.retry import backoff_seconds, retrying

log = logging.getLogger(__name__)

Record: TypeAlias = ConsumerRecord[Any, Any]
Process = Callable[[list[Record]], Awaitable[list[OutgoingRecord]]]
DeliveryMode = Literal["at-least-once", "exactly-once"]
FATAL_KAFKA_ERRORS: tuple[type[KafkaError], ...] = (
    ProducerFenced,
    TransactionalIdAuthorizationFailed,
    OutOfOrderSequenceNumber,
    UnsupportedVersionError,
)
MAX_BATCHES_IN_FLIGHT = 4
"""Batches processed but not yet committed (at-least-once). The producer sends one request
per broker at a time, so handing over a batch's outputs can wait for the previous
request's answer; with room for a few batches the loop processes the next ones meanwhile."""


@dataclass(frozen=True)
class ConsumerConfig:
    """How one member consumes, produces and commits."""

    bootstrap: str
    topics: tuple[str, ...]
    group_id: str
    client_id: str
    delivery_mode: DeliveryMode = "at-least-once"
    transactional_id: str | None = None
    transaction_timeout_ms: int = 15_000
    session_timeout_ms: int = 10_000
    batch_timeout_ms: int = 500
    max_batch_records: int = 500
    offset_reset: Literal["earliest", "latest"] = "earliest"
    max_partition_fetch_bytes: int = 4 * 1024 * 1024
    linger_ms: int = 2
    producer_max_batch_bytes: int = 256 * 1024
    max_record_bytes: int = 1_000_000
    """The producer's limit for one record; the broker's default is a little above 1 MiB."""
    max_batches_in_flight: int = MAX_BATCHES_IN_FLIGHT
    client_options: Mapping[str, Any] = field(default_factory=dict)
    """Security options (SASL, TLS) every Kafka client of the service passes on."""


class StopRequested(Exception):
    """Start-up was interrupted by a stop request."""


class GroupConsumer:
    """Consumes `topics` in a group and publishes what `process` returns for each batch.

    `retryable` errors from `process` (a dependency that is away) retry the batch while
    its partitions are still ours; `shrink` replaces an output over the size limit.
    In exactly-once mode `on_published` runs once a batch's transaction has committed:
    a `process` that keeps state in memory makes the batch's changes its own only then,
    since a failed transaction calls `process` again with the same records.
    """

    def __init__(
        self,
        config: ConsumerConfig,
        process: Process,
        *,
        retryable: tuple[type[Exception], ...] = (),
        shrink: Shrink | None = None,
        on_retry: Callable[[], None] = lambda: None,
        on_published: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self._process = process
        self._retryable = retryable
        self._shrink = shrink
        self._on_retry = on_retry
        self._on_published = on_published
        self._exactly_once = config.delivery_mode == "exactly-once"
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._ledger: CommitLedger[TopicPartition] = CommitLedger()
        self._tasks: dict[int, asyncio.Future[None]] = {}
        self._last_queued: asyncio.Future[None] | None = None
        self._commit_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._loop_finished = asyncio.Event()
        self._loop_finished.set()
        self.batch_lock = asyncio.Lock()
        self.generation = 0
        self.started = False
        self.failure: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._producer = self._make_producer()
        await self._producer.start()
        self._consumer = self._make_consumer()
        self._consumer.subscribe(list(self.config.topics), listener=_RebalanceGuard(self))
        await self._consumer.start()
        self.started = True

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def request_stop(self) -> None:
        """Finish the batch at hand, then leave the loop (safe from a signal handler)."""
        self._stopping.set()

    async def until_stopped_or(self, waiting: Awaitable[Any]) -> Any:
        """The awaitable's result, or StopRequested if a stop comes first."""
        task = asyncio.ensure_future(waiting)
        stop = asyncio.ensure_future(self._stopping.wait())
        done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        for pending in (task, stop):
            if pending not in done:
                pending.cancel()
        if task not in done:
            raise StopRequested("stop requested during start-up")
        return task.result()

    async def run_until_stopped(self) -> None:
        """Consume until `request_stop`; a fatal error stops the loop and is raised."""
        consumer = self._consumer
        if not self.started or consumer is None:
            raise RuntimeError("start() the consumer first")
        self._loop_finished.clear()
        rewinds = 0
        try:
            while not self._stopping.is_set():
                batch = await consumer.getmany(
                    timeout_ms=self.config.batch_timeout_ms,
                    max_records=self.config.max_batch_records,
                )
                if await self._settle(wait=False):
                    rewinds += 1  # the batch is fetched again from the rewind point
                    await asyncio.sleep(backoff_seconds(rewinds + 1))
                    continue
                rewinds = 0
                if batch:
                    await self._handle(batch, self.generation)
            async with self.batch_lock:
                await self._settle(wait=True)
        except Exception as error:
            self.failure = error
            log.exception("the consume loop failed")
            raise
        finally:
            self._loop_finished.set()

    async def stop(self) -> None:
        """Stop consuming, flush outputs, leave the group and close the clients."""
        self.request_stop()
        await self._loop_finished.wait()
        if self._tasks:  # outputs under way are flushed and committed if they can be
            await asyncio.wait(list(self._tasks.values()))
            self._tasks.clear()
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        self.started = False

    # -- what health and metrics read ------------------------------------------------------

    def assignment(self) -> set[TopicPartition]:
        if self._consumer is None or not self.started:
            return set()
        return set(self._consumer.assignment())

    def lag(self) -> dict[TopicPartition, int]:
        """Records after the last committed offset, per assigned partition."""
        lag: dict[TopicPartition, int] = {}
        if self._consumer is None or not self.started:
            return lag
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            position = self._ledger.committed.get(tp)
            if highwater is not None and position is not None:
                lag[tp] = max(0, highwater - position)
        return lag

    # -- Kafka clients ---------------------------------------------------------------------

    def _make_producer(self) -> AIOKafkaProducer:
        config = self.config
        options: dict[str, Any] = {}
        if self._exactly_once:
            if config.transactional_id is None:
                raise ValueError("exactly-once needs a transactional id")
            options = {
                "transactional_id": config.transactional_id,
                "transaction_timeout_ms": config.transaction_timeout_ms,
            }
        return AIOKafkaProducer(
            bootstrap_servers=config.bootstrap,
            client_id=config.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=config.linger_ms,
            max_batch_size=config.producer_max_batch_bytes,
            max_request_size=config.max_record_bytes,
            **options,
            **config.client_options,
        )

    def _make_consumer(self) -> AIOKafkaConsumer:
        config = self.config
        return AIOKafkaConsumer(
            bootstrap_servers=config.bootstrap,
            client_id=config.client_id,
            group_id=config.group_id,
            enable_auto_commit=False,
            auto_offset_reset=config.offset_reset,
            isolation_level="read_committed" if self._exactly_once else "read_uncommitted",
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=max(config.session_timeout_ms // 3, 100),
            max_partition_fetch_bytes=config.max_partition_fetch_bytes,
            **config.client_options,
        )

    # -- one batch -------------------------------------------------------------------------

    async def _handle(self, batch: dict[TopicPartition, list[Record]], generation: int) -> None:
        """Process and publish a batch, retrying transient failures while it is still ours.

        The first attempt runs without the retry policy's machinery: it costs tens of
        microseconds per batch, which only a failed batch should pay.
        """
        records = [record for records in batch.values() for record in records]
        offsets = BatchOffsets.of(batch)
        transient = (*self._retryable, KafkaError)
        try:
            await self._attempt(records, offsets, generation)
            return
        except FATAL_KAFKA_ERRORS:
            raise
        except transient as error:
            failure: Exception = error
        self._on_retry()
        log.warning("a batch failed; retrying", extra={"attempt": 1, "error": repr(failure)})
        try:
            await asyncio.sleep(backoff_seconds(1))
            async for attempt in retrying(
                on=transient,
                but_not=FATAL_KAFKA_ERRORS,
                log=log,
                what="a batch",
                until=self._stopping.is_set,
                on_retry=self._on_retry,
            ):
                with attempt:
                    if self._stopping.is_set():
                        return  # nothing was committed: the partitions' next owner replays it
                    await self._attempt(records, offsets, generation)
        except FATAL_KAFKA_ERRORS:
            raise
        except transient:
            if not self._stopping.is_set():
                raise

    async def _attempt(
        self, records: list[Record], offsets: BatchOffsets[TopicPartition], generation: int
    ) -> None:
        async with self.batch_lock:
            if generation != self.generation:
                log.info("partitions moved during the batch; the new owner replays it")
                return
            outgoing = await self._process(records)
            await self._publish(outgoing, offsets)

    async def _publish(
        self, outgoing: list[OutgoingRecord], offsets: BatchOffsets[TopicPartition]
    ) -> None:
        producer = self._producer
        assert producer is not None
        if self._exactly_once:
            async with producer.transaction():
                await asyncio.gather(*await queue_records(producer, outgoing, shrink=self._shrink))
                await producer.send_offsets_to_transaction(dict(offsets.next), self.config.group_id)
            self._ledger.committed.update(offsets.next)
            self._on_published()
            return
        # At-least-once: while this batch's outputs are handed to the producer and
        # acknowledged and its offsets committed, the next batch is already processed.
        # Batches reach the producer in order (so per-key order holds); the ledger
        # releases offsets for commit only in batch order.
        oldest = self._ledger.oldest
        if self._ledger.in_flight >= self.config.max_batches_in_flight and oldest is not None:
            await asyncio.wait([self._tasks[oldest]])  # done already if it failed
        sequence = self._ledger.opened(offsets)
        queued: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tasks[sequence] = asyncio.ensure_future(
            self._produce_then_commit(sequence, self._last_queued, outgoing, queued)
        )
        self._last_queued = queued

    async def _produce_then_commit(
        self,
        sequence: int,
        previous_queued: asyncio.Future[None] | None,
        outgoing: list[OutgoingRecord],
        queued: asyncio.Future[None],
    ) -> None:
        producer = self._producer
        assert producer is not None
        acknowledgements: list[asyncio.Future[Any]] = []
        try:
            try:
                if previous_queued is not None:
                    await asyncio.shield(previous_queued)
                acknowledgements = await queue_records(producer, outgoing, shrink=self._shrink)
            except asyncio.CancelledError:
                queued.cancel()
                raise
            except BaseException as error:
                queued.set_exception(error)
                queued.exception()  # retrieved here: the later batches see it too
                raise
            queued.set_result(None)
            await asyncio.gather(*acknowledgements)
        except Exception as error:
            for acknowledgement in acknowledgements:
                if acknowledgement.done() and not acknowledgement.cancelled():
                    acknowledgement.exception()  # retrieved: the batch is replayed instead
            self._ledger.failed(sequence, error)
            return
        self._ledger.produced(sequence)
        await self._commit_ready()

    async def _commit_ready(self) -> None:
        """Commit whatever the ledger releases, one commit at a time, in batch order."""
        consumer = self._consumer
        assert consumer is not None
        async with self._commit_lock:
            while (commit := self._ledger.next_commit()) is not None:
                try:
                    await consumer.commit(commit.offsets)
                except Exception as error:
                    self._ledger.commit_failed(commit, error)
                    return
                self._ledger.commit_succeeded(commit)

    async def settle_all(self) -> None:
        """Wait until every produced batch is committed (or rewound), e.g. before a rebalance."""
        await self._settle(wait=True)

    async def _settle(self, *, wait: bool) -> bool:
        """Forget finished batches; if the oldest failed, rewind to where it began.

        Returns True when it rewound: the failed batch and every later one (their
        commits wait on it) are consumed again, so nothing is lost.
        """
        tasks = self._tasks
        if wait and tasks:
            await asyncio.wait(list(tasks.values()))
        if self._ledger.head_failed:
            if tasks:
                await asyncio.wait(list(tasks.values()))
            rewind = self._ledger.rewind()
            assert rewind is not None
            tasks.clear()
            self._last_queued = None
            failure = rewind.error
            if isinstance(failure, FATAL_KAFKA_ERRORS) or not isinstance(failure, KafkaError):
                raise failure or RuntimeError("a batch failed")
            assert self._consumer is not None
            assigned = self._consumer.assignment()
            for tp, offset in rewind.points.items():
                if tp in assigned:
                    self._consumer.seek(tp, offset)
            self._on_retry()
            log.warning(
                "producing or committing a batch failed; consuming again from its offsets",
                extra={"error": repr(failure), "partitions": _names(list(rewind.points))},
            )
            return True
        oldest_open = self._ledger.oldest
        for sequence in [s for s, task in tasks.items() if task.done()]:
            if oldest_open is None or sequence < oldest_open:
                del tasks[sequence]
        return False


class _RebalanceGuard(ConsumerRebalanceListener):  # type: ignore[misc]
    """Lets in-flight batches finish (and commit) before their partitions are taken away."""

    def __init__(self, member: GroupConsumer) -> None:
        self._member = member

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        async with self._member.batch_lock:
            await self._member.settle_all()
            self._member.generation += 1
        if revoked:
            log.info("partitions revoked", extra={"partitions": _names(revoked)})

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self._member.generation += 1
        log.info("partitions assigned", extra={"partitions": _names(assigned)})


def _names(partitions: Sequence[TopicPartition]) -> list[str]:
    return sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions)
