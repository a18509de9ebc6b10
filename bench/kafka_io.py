"""The bench's own Kafka clients: a producer configured like the platform's, and a
collector of predictions that notes when each request's answer arrived."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.inference.settings import InferenceSettings
from shared.kafka.codec import OutgoingRecord
from shared.kafka.producing import queue_records
from shared.runtime.consumer import ConsumerConfig

WORKER_DEFAULTS = {name: field.default for name, field in InferenceSettings.model_fields.items()}
"""The inference worker's settings when nothing overrides them; the bench copies none."""
RUNTIME_DEFAULTS = {field.name: field.default for field in dataclasses.fields(ConsumerConfig)}

PRODUCER_OPTIONS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 5,
    "max_batch_size": WORKER_DEFAULTS["producer_max_batch_bytes"],
}
"""Durable and idempotent with a small linger, as the platform's producers, and batches
as large as the worker's (MODELBUS_PRODUCER_MAX_BATCH_BYTES): with the client's 16 KiB
default, every request to the broker would carry a few dozen records, and the load
generator, not the system under test, would set the pace."""
CONSUMER_OPTIONS: dict[str, Any] = {
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "max_partition_fetch_bytes": RUNTIME_DEFAULTS["max_partition_fetch_bytes"],
}
"""As the services' consumers (manual commits, the shared runtime's fetch size)."""
ASSIGNMENT_POLLS = 1000
GETMANY_TIMEOUT_MS: int = WORKER_DEFAULTS["batch_timeout_ms"]
GETMANY_MAX_RECORDS: int = WORKER_DEFAULTS["max_batch_records"]
"""The worker's defaults (MODELBUS_BATCH_TIMEOUT_MS, MODELBUS_MAX_BATCH_RECORDS)."""


def make_producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, client_id="bench", **PRODUCER_OPTIONS)


async def send_all(
    producer: AIOKafkaProducer, topic: str, records: Iterable[OutgoingRecord]
) -> list[asyncio.Future[Any]]:
    """Publish every record to `topic` as fast as the producer takes them; returns the acks.

    The worker's own batched producing packs them into one batch per partition, by key
    exactly as send() would: send() costs tens of microseconds of Python per record,
    which would make the load generator, not the system under test, the bottleneck.
    """
    retargeted = [OutgoingRecord(topic, r.key, r.value, r.headers) for r in records]
    return await queue_records(producer, retargeted)


class PredictionCollector:
    """Reads `predictions` (all partitions, no group) and records each request's first
    non-shadow answer: when it arrived, its status, and any duplicates."""

    def __init__(self, bootstrap: str, topic: str, *, read_committed: bool = False) -> None:
        self.consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            client_id="bench-collector",
            group_id=None,
            isolation_level="read_committed" if read_committed else "read_uncommitted",
            **CONSUMER_OPTIONS,
        )
        self.arrivals: dict[str, float] = {}
        """request id -> time.perf_counter() when its answer was read."""
        self.latency_ms: dict[str, float] = {}
        """request id -> latency the worker reported (its clock: created_at to answer)."""
        self.statuses: Counter[str] = Counter()
        self.not_ok: dict[str, str] = {}
        self.duplicates = 0
        self.shadows = 0
        self.last_arrival = 0.0
        self._expected: set[str] = set()
        self._seen_expected = 0
        self._complete = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        for _ in range(ASSIGNMENT_POLLS):
            if self.consumer.assignment():
                break
            await asyncio.sleep(0.01)
        else:
            raise RuntimeError(f"no partitions of {self.consumer.subscription()} assigned")
        self._task = asyncio.create_task(self._run(), name="prediction-collector")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()

    def expect(self, request_ids: Iterable[str]) -> None:
        """Start waiting for these ids (answers already read count)."""
        self._expected = set(request_ids)
        self._seen_expected = len(self._expected & self.arrivals.keys())
        self._complete.clear()
        if self._seen_expected == len(self._expected):
            self._complete.set()

    @property
    def missing(self) -> int:
        return len(self._expected) - self._seen_expected

    async def wait(self, seconds: float) -> bool:
        """True once every expected id has an answer; False after `seconds`."""
        try:
            await asyncio.wait_for(self._complete.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100, max_records=2000)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    self._record(orjson.loads(record.value), now)

    def _record(self, prediction: dict[str, Any], now: float) -> None:
        # orjson instead of the pydantic contract: the load generator shares two cores
        # with the system under test, so it parses no more than it checks.
        if prediction["variant"] == "shadow":
            self.shadows += 1
            return
        request_id = prediction["request_id"]
        if request_id in self.arrivals:
            self.duplicates += 1
            return
        self.arrivals[request_id] = now
        self.latency_ms[request_id] = prediction["latency_ms"]
        status = prediction["status"]
        self.statuses[status] += 1
        if status != "ok":
            self.not_ok[request_id] = (prediction.get("error") or {}).get("code", "?")
        if request_id in self._expected:
            self._seen_expected += 1
            self.last_arrival = now
            if self._seen_expected == len(self._expected):
                self._complete.set()
