"""The consume -> predict -> produce -> commit loop of one worker copy.

Micro-batches come from `requests` (getmany). Outputs of a batch are produced
concurrently and acknowledged before its offsets are committed (at-least-once), or
produced in one Kafka transaction together with the offsets (exactly-once). In
at-least-once mode the next batch is predicted while the previous one is acknowledged
and committed; commits stay in batch order, and a failed batch rewinds the consumer to
its first offsets. Nothing is committed before it is produced: a crash replays from the
last committed offsets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    TransactionalIdAuthorizationFailed,
    UnsupportedVersionError,
)
from aiokafka.structs import ConsumerRecord
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from services.inference.adapters import tracing
from services.inference.adapters.kafka_records import (
    DecodedBatch,
    PredictionEncoder,
    dead_letter_record,
    decode_batch,
)
from services.inference.adapters.producing import queue_records
from services.inference.adapters.registry_source import RegistryModelSource
from services.inference.domain.metrics import WorkerMetrics, render_prometheus
from services.inference.entrypoints.health import HealthServer
from services.inference.entrypoints.model_events import DeploymentSync
from services.inference.service_layer.inference import BatchResult, InferenceService
from services.inference.service_layer.ports import RegistryUnavailable
from services.inference.settings import InferenceSettings
from shared.contracts import ErrorCode
from shared.contracts.base import utc_now
from shared.kafka.codec import OutgoingRecord
from shared.kafka.model_events import ModelEventsFollower
from shared.topics import DEAD_LETTERS, PREDICTIONS, REQUESTS

log = logging.getLogger(__name__)
T = TypeVar("T")

Batch = dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
FATAL_KAFKA_ERRORS: tuple[type[KafkaError], ...] = (
    ProducerFenced,
    TransactionalIdAuthorizationFailed,
    OutOfOrderSequenceNumber,
    UnsupportedVersionError,
)
MAX_RETRY_BACKOFF_SECONDS = 5.0
MAX_BATCHES_IN_FLIGHT = 4
"""Batches predicted but not yet committed. The producer sends one request per broker at
a time, so handing over a batch's outputs can wait for the previous request's answer;
with room for a few batches the loop predicts the next ones meanwhile."""


@dataclass(frozen=True, slots=True)
class _BatchOffsets:
    """Where a batch starts (to consume it again) and the offsets that commit it."""

    first: dict[TopicPartition, int]
    next: dict[TopicPartition, int]


@dataclass(frozen=True, slots=True)
class _InFlightBatch:
    """A batch being produced: `queued` once the producer holds all its records,
    `completion` once they are acknowledged and its offsets committed."""

    offsets: _BatchOffsets
    queued: asyncio.Future[None]
    completion: asyncio.Future[None]


class WorkerStopped(Exception):
    """Start-up was interrupted by a stop request."""


class _RebalanceGuard(ConsumerRebalanceListener):  # type: ignore[misc]
    """Lets an in-flight batch finish (and commit) before its partitions are taken away."""

    def __init__(self, worker: InferenceWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        async with self._worker.batch_lock:
            await self._worker.settle_all()
            self._worker.generation += 1
        if revoked:
            log.info("partitions revoked", extra={"partitions": _names(revoked)})

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self._worker.generation += 1
        log.info("partitions assigned", extra={"partitions": _names(assigned)})


def _names(partitions: Sequence[TopicPartition]) -> list[str]:
    return sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions)


class InferenceWorker:
    """One worker copy: requests consumer, predictions producer, model events, health HTTP."""

    def __init__(
        self,
        settings: InferenceSettings,
        *,
        service: InferenceService,
        source: RegistryModelSource,
        events: ModelEventsFollower,
        deployment_sync: DeploymentSync,
        metrics: WorkerMetrics,
    ) -> None:
        self.settings = settings
        self.service = service
        self.metrics = metrics
        self._source = source
        self._events = events
        self._deployment_sync = deployment_sync
        self._requests_topic = settings.topic(REQUESTS.name)
        self._dead_letters_topic = settings.topic(DEAD_LETTERS.name)
        seal_key = settings.callback_seal_key
        self._encoder = PredictionEncoder(
            topic=settings.topic(PREDICTIONS.name),
            callback_seal_key=seal_key.get_secret_value().encode() if seal_key else None,
        )
        self._exactly_once = settings.delivery_mode == "exactly-once"
        self._client_id = f"{settings.kafka_client_id}-inference-{settings.worker_instance}"
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._health = HealthServer(self, host=settings.worker_host, port=settings.worker_port)
        self._stopping = asyncio.Event()
        self._started = False
        self._stopped = False
        self._loop_finished = asyncio.Event()
        self._loop_finished.set()
        self._loop_failed: Exception | None = None
        self._committed: dict[TopicPartition, int] = {}
        self._in_flight: list[_InFlightBatch] = []
        self.batch_lock = asyncio.Lock()
        self.generation = 0

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def health_port(self) -> int | None:
        return self._health.port

    async def start(self) -> None:
        """Check the registry key, fetch deployments, then start Kafka clients and health.

        Raises WorkerStopped if a stop is requested while waiting for the registry.
        """
        await self._health.start()
        identity = await self._until_stopped_or(self._registry_identity())
        log.info(
            "registry key accepted",
            extra={"key": identity.get("name"), "role": identity.get("role")},
        )
        self._events.start()
        await self._until_stopped_or(self._events.synced.wait())
        self._producer = self._make_producer()
        await self._producer.start()
        self._consumer = self._make_consumer()
        self._consumer.subscribe([self._requests_topic], listener=_RebalanceGuard(self))
        await self._consumer.start()
        self._started = True
        log.info(
            "inference worker started",
            extra={
                "topic": self._requests_topic,
                "group": self.settings.consumer_group,
                "delivery_mode": self.settings.delivery_mode,
                "health_port": self.health_port,
            },
        )

    async def _registry_identity(self) -> dict[str, Any]:
        """The key's name and role; waits for a registry that is not up yet."""
        attempt = 0
        while True:
            try:
                return await self._source.whoami()
            except RegistryUnavailable as error:
                attempt += 1
                delay = min(0.1 * 2**attempt, MAX_RETRY_BACKOFF_SECONDS)
                log.warning("waiting for the registry", extra={"error": str(error)})
                await asyncio.sleep(delay)

    async def _until_stopped_or(self, waiting: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(waiting)
        stop = asyncio.ensure_future(self._stopping.wait())
        done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        for pending in (task, stop):
            if pending not in done:
                pending.cancel()
        if task not in done:
            raise WorkerStopped("stop requested during start-up")
        return task.result()

    def request_stop(self) -> None:
        """Finish the current batch, then leave the loop (safe from a signal handler)."""
        self._stopping.set()

    async def run_until_stopped(self) -> None:
        """Consume until `request_stop`; a fatal error stops the loop and is raised."""
        if not self._started or self._consumer is None:
            raise RuntimeError("start() the worker first")
        consumer = self._consumer
        self._loop_finished.clear()
        failures = 0
        try:
            while not self._stopping.is_set():
                batch = await consumer.getmany(
                    timeout_ms=self.settings.batch_timeout_ms,
                    max_records=self.settings.max_batch_records,
                )
                if await self._settle(wait=False):
                    failures += 1  # rewound: this batch is fetched again from the rewind point
                    await asyncio.sleep(min(0.1 * 2**failures, MAX_RETRY_BACKOFF_SECONDS))
                    continue
                failures = 0
                if batch:
                    await self._process(batch, self.generation)
            async with self.batch_lock:
                await self._settle(wait=True)
        except Exception as error:
            self._loop_failed = error
            log.exception("the consume loop failed")
            raise
        finally:
            self._loop_finished.set()

    async def stop(self) -> None:
        """Stop consuming, flush outputs, leave the group and close everything (idempotent)."""
        self.request_stop()
        if self._stopped:
            return
        self._stopped = True
        await self._loop_finished.wait()  # the in-flight batch has produced and committed
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        await self._events.stop()
        await self._deployment_sync.stop()
        await self._health.stop()
        await asyncio.to_thread(self._source.close)
        log.info("inference worker stopped", extra={"records": self.metrics.records})

    # -- Kafka clients ---------------------------------------------------------------------

    def _make_producer(self) -> AIOKafkaProducer:
        settings = self.settings
        options: dict[str, Any] = {}
        if self._exactly_once:
            options = {
                "transactional_id": settings.transactional_id,
                "transaction_timeout_ms": settings.transaction_timeout_ms,
            }
        return AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=settings.linger_ms,
            max_batch_size=settings.producer_max_batch_bytes,
            **options,
            **settings.kafka_security.client_options(),
        )

    def _make_consumer(self) -> AIOKafkaConsumer:
        settings = self.settings
        return AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=self._client_id,
            group_id=settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed" if self._exactly_once else "read_uncommitted",
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=max(settings.session_timeout_ms // 3, 100),
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **settings.kafka_security.client_options(),
        )

    # -- one batch -------------------------------------------------------------------------

    async def _process(self, batch: Batch, generation: int) -> None:
        """Handle a batch, retrying transient failures while its partitions are still ours."""
        attempt = 0
        while True:
            async with self.batch_lock:
                if generation != self.generation:
                    log.info("partitions moved during the batch; the new owner replays it")
                    return
                try:
                    await self._handle(batch)
                    return
                except RegistryUnavailable as error:
                    reason = f"registry unavailable: {error}"
                except FATAL_KAFKA_ERRORS:
                    raise
                except KafkaError as error:
                    reason = f"kafka error: {error!r}"
            attempt += 1
            self.metrics.batch_retries += 1
            delay = min(0.1 * 2**attempt, MAX_RETRY_BACKOFF_SECONDS)
            log.warning(
                "batch failed; retrying",
                extra={"attempt": attempt, "reason": reason, "delay_seconds": delay},
            )
            if self._stopping.is_set():
                return  # nothing was committed: whoever owns the partitions next replays it
            await asyncio.sleep(delay)

    async def _handle(self, batch: Batch) -> None:
        records = [record for records in batch.values() for record in records]
        offsets = _BatchOffsets(
            first={tp: records_of[0].offset for tp, records_of in batch.items()},
            next={tp: records_of[-1].offset + 1 for tp, records_of in batch.items()},
        )
        started_ns = time.time_ns()
        decoded = decode_batch(records, now=utc_now())
        links, parents = self._sampled_parents(decoded)
        with tracing.tracer().start_as_current_span(
            f"{self._requests_topic} process",
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": self._requests_topic,
                "messaging.batch.message_count": len(records),
            },
        ) as batch_span:
            spans = self._record_spans(decoded, parents, started_ns)
            try:
                result = await self.service.handle(decoded.requests)
                outgoing = self._outgoing(decoded, result, spans, batch_span)
            finally:
                for span in spans.values():
                    if span.is_recording():  # the batch failed before answering
                        span.end()
            await self._publish(outgoing, offsets)
        self.metrics.records += len(records)
        self.metrics.batches += 1
        self.metrics.batch_sizes.observe(len(records))
        for unreadable in decoded.unreadable:
            self.metrics.dead_letters[unreadable.dead_letter.error_code] += 1
            if (answer := unreadable.answer) is not None:
                self.metrics.count_error(ErrorCode.UNDECODABLE)
                self.metrics.count_prediction(answer.model, answer.version, "production", "error")

    def _sampled_parents(self, decoded: DecodedBatch) -> tuple[list[trace.Link], dict[int, Any]]:
        links: list[trace.Link] = []
        parents: dict[int, Any] = {}
        for index, traceparent in enumerate(decoded.traceparents):
            if traceparent is None or not tracing.is_sampled(traceparent):
                continue
            context = tracing.parent_context(traceparent)
            if context is None:
                continue
            parents[index] = context
            if len(links) < tracing.MAX_LINKS:
                links.append(tracing.link_to(context))
        return links, parents

    def _record_spans(
        self, decoded: DecodedBatch, parents: dict[int, Any], started_ns: int
    ) -> dict[int, Span]:
        tracer = tracing.tracer()
        return {
            index: tracer.start_span(
                "predict",
                context=context,
                kind=SpanKind.CONSUMER,
                start_time=started_ns,
                attributes={"modelbus.request_id": decoded.requests[index].request_id},
            )
            for index, context in parents.items()
        }

    def _outgoing(
        self,
        decoded: DecodedBatch,
        result: BatchResult,
        spans: dict[int, Span],
        batch_span: Span,
    ) -> list[OutgoingRecord]:
        time_header = utc_now().isoformat().encode()
        batch_traceparent = (
            tracing.format_traceparent(batch_span.get_span_context())
            or tracing.random_traceparent()
        )
        traceparents: list[bytes] = []
        for index, traceparent in enumerate(decoded.traceparents):
            span = spans.get(index)
            if span is not None:
                answer = result.answers[index]
                span.set_attributes(
                    {
                        "modelbus.model": answer.model,
                        "modelbus.version": answer.version,
                        "modelbus.variant": answer.variant,
                        "modelbus.status": answer.status,
                    }
                )
                span.end()
                traceparent = tracing.format_traceparent(span.get_span_context()) or traceparent
            traceparents.append(traceparent or batch_traceparent)
        encode = self._encoder.encode
        outgoing = [
            encode(answer, time=time_header, traceparent=traceparents[index])
            for index, answer in enumerate(result.answers)
        ]
        outgoing.extend(
            encode(shadow, time=time_header, traceparent=traceparents[index])
            for index, shadow in result.shadows
        )
        for unreadable in decoded.unreadable:
            outgoing.append(dead_letter_record(unreadable, topic=self._dead_letters_topic))
            if unreadable.answer is not None:
                outgoing.append(
                    encode(unreadable.answer, time=time_header, traceparent=batch_traceparent)
                )
        return outgoing

    async def _publish(self, outgoing: list[OutgoingRecord], offsets: _BatchOffsets) -> None:
        producer, consumer = self._producer, self._consumer
        assert producer is not None and consumer is not None
        if self._exactly_once:
            async with producer.transaction():
                await asyncio.gather(*await queue_records(producer, outgoing))
                await producer.send_offsets_to_transaction(
                    offsets.next, self.settings.consumer_group
                )
            self._committed.update(offsets.next)
            return
        # At-least-once: while this batch's outputs are handed to the producer and
        # acknowledged and its offsets committed, the next batch is already being
        # predicted. Batches reach the producer in order (so per-key order holds), and
        # commits stay in order, each only after its own outputs and every earlier commit.
        if len(self._in_flight) >= MAX_BATCHES_IN_FLIGHT:
            await asyncio.wait([self._in_flight[0].completion])
        previous = self._in_flight[-1] if self._in_flight else None
        queued: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        completion = asyncio.ensure_future(
            self._produce_then_commit(previous, outgoing, offsets.next, queued)
        )
        self._in_flight.append(_InFlightBatch(offsets, queued, completion))

    async def _produce_then_commit(
        self,
        previous: _InFlightBatch | None,
        outgoing: list[OutgoingRecord],
        offsets: dict[TopicPartition, int],
        queued: asyncio.Future[None],
    ) -> None:
        producer, consumer = self._producer, self._consumer
        assert producer is not None and consumer is not None
        acknowledgements: list[asyncio.Future[Any]] = []
        try:
            try:
                if previous is not None:
                    await asyncio.shield(previous.queued)
                acknowledgements = await queue_records(producer, outgoing)
            except asyncio.CancelledError:
                queued.cancel()
                raise
            except BaseException as error:
                queued.set_exception(error)
                queued.exception()  # retrieved here: the later batches see it too
                raise
            queued.set_result(None)
            if previous is not None:
                await asyncio.shield(previous.completion)
            await asyncio.gather(*acknowledgements)
        except BaseException:
            for acknowledgement in acknowledgements:
                if acknowledgement.done() and not acknowledgement.cancelled():
                    acknowledgement.exception()  # retrieved: the batch is replayed instead
            raise
        await consumer.commit(offsets)
        self._committed.update(offsets)

    async def settle_all(self) -> None:
        """Wait until every produced batch is committed (or rewound), e.g. before a rebalance."""
        await self._settle(wait=True)

    async def _settle(self, *, wait: bool) -> bool:
        """Forget committed batches; if a batch failed, rewind to its first offsets.

        Returns True when it rewound: the failed batch and every later one (their
        commits wait on it) are consumed again, so nothing is lost.
        """
        in_flight = self._in_flight
        if wait and in_flight:
            await asyncio.wait([batch.completion for batch in in_flight])
        while in_flight and in_flight[0].completion.done():
            failure = in_flight[0].completion.exception()
            if failure is None:
                in_flight.pop(0)
                continue
            if isinstance(failure, FATAL_KAFKA_ERRORS) or not isinstance(failure, KafkaError):
                raise failure
            await asyncio.wait([batch.completion for batch in in_flight])
            rewind: dict[TopicPartition, int] = {}
            for batch in in_flight:
                batch.completion.exception()
                for tp, offset in batch.offsets.first.items():
                    rewind[tp] = min(offset, rewind.get(tp, offset))
            in_flight.clear()
            assert self._consumer is not None
            assigned = self._consumer.assignment()
            for tp, offset in rewind.items():
                if tp in assigned:
                    self._consumer.seek(tp, offset)
            self.metrics.batch_retries += 1
            log.warning(
                "producing or committing a batch failed; consuming again from its offsets",
                extra={"error": repr(failure), "partitions": _names(list(rewind))},
            )
            return True
        return False

    # -- health ----------------------------------------------------------------------------

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        alive = self._loop_failed is None
        return alive, {"status": "ok" if alive else "failed", "error": repr(self._loop_failed)}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        assigned = (
            sorted(self._consumer.assignment(), key=lambda tp: tp.partition)
            if (self._consumer is not None and self._started)
            else []
        )
        checks = {
            "consumer_started": self._started,
            "partitions_assigned": bool(assigned),
            "deployments_synced": self._events.synced.is_set(),
            "loop_healthy": self._loop_failed is None,
            "stopping": self._stopping.is_set(),
        }
        ready = all(value for key, value in checks.items() if key != "stopping") and not (
            self._stopping.is_set()
        )
        details: dict[str, Any] = {
            "status": "ready" if ready else "not ready",
            "checks": checks,
            "partitions": [tp.partition for tp in assigned],
            "models": sorted(self.service.catalogue.models),
            "loaded_versions": [f"{m}:{v}" for m, v in self.service.store.loaded_versions],
            "shadow_agreement": {
                model: {
                    "agreed": tally.agreed.get(model, 0),
                    "compared": compared,
                    "rate": tally.rate(model),
                }
                for tally in (self.metrics.shadow,)
                for model, compared in tally.compared.items()
            },
        }
        return ready, details

    def metrics_text(self) -> str:
        lag: dict[tuple[str, str], int] = {}
        assigned: set[TopicPartition] = set()
        if self._consumer is not None and self._started:
            assigned = self._consumer.assignment()
            for tp in assigned:
                highwater = self._consumer.highwater(tp)
                position = self._committed.get(tp)
                if highwater is not None and position is not None:
                    lag[(tp.topic, str(tp.partition))] = max(0, highwater - position)
        cache = self.service.cache
        return render_prometheus(
            self.metrics,
            cache_hits=cache.hits,
            cache_misses=cache.misses,
            cache_entries=len(cache),
            consumer_lag=lag,
            assigned_partitions=len(assigned),
        )
