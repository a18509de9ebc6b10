"""A real registry, real topics and workers built from settings, per test."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from devtools.kafka_broker import KafkaBroker
from devtools.live_registry import LiveRegistry, live_registry
from services.inference.bootstrap import build_worker
from services.inference.entrypoints.kafka_worker import InferenceWorker
from services.inference.settings import InferenceSettings
from shared.contracts import Prediction, PredictionRequest
from shared.kafka.admin import ensure_topics
from shared.kafka.codec import decode, encode
from shared.topics import DEAD_LETTERS, MODEL_EVENTS, PREDICTIONS, REQUESTS

REQUEST_PARTITIONS = 4
SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@dataclass
class Stack:
    """Topics under a unique prefix, a live registry, and helpers to drive workers."""

    bootstrap: str
    prefix: str
    registry: LiveRegistry
    producer: AIOKafkaProducer
    workers: list[InferenceWorker] = field(default_factory=list)

    def topic(self, name: str) -> str:
        return self.prefix + name

    def settings(self, **overrides: Any) -> InferenceSettings:
        values: dict[str, Any] = {
            "kafka_bootstrap": self.bootstrap,
            "topic_prefix": self.prefix,
            "registry_url": self.registry.url,
            "registry_api_key": self.registry.keys["reader"],
            "consumer_group": f"{self.prefix}inference",
            "worker_port": 0,
            "session_timeout_ms": 6000,
            "instance_id": f"w{uuid.uuid4().hex[:8]}",
        }
        return InferenceSettings(**(values | overrides))

    def env(self, **overrides: str) -> dict[str, str]:
        """The same settings as MODELBUS_* environment variables, for worker processes."""
        settings = self.settings()
        values = {
            "MODELBUS_KAFKA_BOOTSTRAP": self.bootstrap,
            "MODELBUS_TOPIC_PREFIX": self.prefix,
            "MODELBUS_REGISTRY_URL": self.registry.url,
            "MODELBUS_REGISTRY_API_KEY": self.registry.keys["reader"],
            "MODELBUS_CONSUMER_GROUP": settings.consumer_group,
            "MODELBUS_WORKER_PORT": "0",
            "MODELBUS_SESSION_TIMEOUT_MS": "6000",
        }
        return values | overrides

    @asynccontextmanager
    async def worker(self, **overrides: Any) -> AsyncIterator[InferenceWorker]:
        """A started worker consuming in the background until the block ends."""
        worker = build_worker(self.settings(**overrides))
        await worker.start()
        running = asyncio.create_task(worker.run_until_stopped())
        try:
            await wait_until_ready(worker)
            yield worker
        finally:
            await worker.stop()
            await running

    async def send(self, requests: Iterable[PredictionRequest]) -> None:
        acks = []
        for message in requests:
            record = encode(
                REQUESTS,
                message,
                key=message.partition_key,
                source="/tests",
                topic=self.topic(REQUESTS.name),
            )
            acks.append(
                await self.producer.send(
                    record.topic, record.value, key=record.key, headers=record.headers
                )
            )
        await asyncio.gather(*acks)

    async def send_raw(self, value: bytes, *, key: bytes) -> None:
        await self.producer.send_and_wait(self.topic(REQUESTS.name), value, key=key)


async def wait_until_ready(worker: InferenceWorker, timeout: float = 30.0) -> None:
    """Poll /readyz over HTTP, as an orchestrator would."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while True:
            response = await http.get(f"http://127.0.0.1:{worker.health_port}/readyz")
            if response.status_code == 200:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"worker not ready: {response.text}")
            await asyncio.sleep(0.1)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


class TopicFollower:
    """Reads a topic from the beginning into memory, for polling assertions."""

    def __init__(self, bootstrap: str, topic: str, *, isolation_level: str = "read_uncommitted"):
        self.consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level=isolation_level,
        )
        self.records: list[Any] = []

    async def __aenter__(self) -> TopicFollower:
        await self.consumer.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.consumer.stop()

    async def poll(self) -> list[Any]:
        batches = await self.consumer.getmany(timeout_ms=100)
        for records in batches.values():
            self.records.extend(records)
        return self.records

    async def until_count(self, count: int, timeout: float = 20.0) -> list[Any]:
        """Raw records read so far, once there are at least `count`."""
        deadline = time.monotonic() + timeout
        while len(await self.poll()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.records)} of {count} records arrived")
        return self.records

    async def predictions(self) -> list[Prediction]:
        await self.poll()
        return [decode(PREDICTIONS, record.value, record.headers) for record in self.records]

    async def until(
        self, condition: Callable[[list[Prediction]], bool], timeout: float = 20.0
    ) -> list[Prediction]:
        """Predictions read so far, once `condition` holds for them."""
        deadline = time.monotonic() + timeout
        while True:
            found = await self.predictions()
            if condition(found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met after {len(found)} predictions")


def answered(ids: Iterable[str], variant: str | None = None) -> Callable[[list[Prediction]], bool]:
    wanted = set(ids)

    def check(predictions: list[Prediction]) -> bool:
        seen = {p.request_id for p in predictions if variant is None or p.variant == variant}
        return wanted <= seen

    return check


@pytest.fixture
async def stack(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path
) -> AsyncIterator[Stack]:
    await ensure_topics(
        kafka_broker.bootstrap,
        prefix=topic_prefix,
        specs=[REQUESTS, PREDICTIONS, MODEL_EVENTS, DEAD_LETTERS],
        partitions_override=REQUEST_PARTITIONS,
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=2)
    await producer.start()
    try:
        with live_registry(
            data_dir=tmp_path, kafka_bootstrap=kafka_broker.bootstrap, topic_prefix=topic_prefix
        ) as registry:
            yield Stack(kafka_broker.bootstrap, topic_prefix, registry, producer)
    finally:
        await producer.stop()


@pytest.fixture
def iris_request() -> Callable[..., PredictionRequest]:
    def make(request_id: str, **fields: Any) -> PredictionRequest:
        inputs = fields.pop("inputs", SETOSA)
        return PredictionRequest(request_id=request_id, model="iris", inputs=inputs, **fields)

    return make


def by_request(predictions: list[Prediction], variant: str | None = None) -> dict[str, Prediction]:
    return {p.request_id: p for p in predictions if variant is None or p.variant == variant}
