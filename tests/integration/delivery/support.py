"""Helpers of the delivery tests: receivers on 127.0.0.1, a harness around the service."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaProducer

from devtools.ports import free_port
from services.delivery.bootstrap import DeliveryService
from services.delivery.receiver import ReceiverStats, create_receiver_app
from services.delivery.settings import DeliverySettings
from shared.callback_seal import seal_callback
from shared.contracts import ClassifierOutput, Prediction
from shared.jobstore.views import JobView
from shared.kafka.publisher import Publisher
from shared.topics import DEAD_LETTERS, PREDICTIONS
from tests.support.waiting import eventually

CALLBACK_SEAL_KEY = "callback-seal-key-for-tests-0123456789"


@dataclass
class Receiver:
    """A webhook receiver served by uvicorn in a thread."""

    url: str
    stats: ReceiverStats
    payloads: list[dict[str, Any]] = field(default_factory=list)

    def hook(self, name: str) -> str:
        return f"{self.url}/hooks/{name}"


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on 127.0.0.1; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def run_receiver(secret: str, *, fail_first: int = 0) -> Iterator[Receiver]:
    payloads: list[dict[str, Any]] = []
    app = create_receiver_app(secret, on_delivery=payloads.append, fail_first=fail_first)
    with serve_app(app) as url:
        yield Receiver(url=url, stats=app.state.stats, payloads=payloads)


@dataclass
class DeliveryHarness:
    """Everything a delivery test touches: settings, the running service, Kafka helpers."""

    settings: DeliverySettings
    service: DeliveryService
    secret: str
    bootstrap: str
    publisher: Publisher

    @property
    def predictions_topic(self) -> str:
        return self.settings.topic(PREDICTIONS.name)

    @property
    def dead_letters_topic(self) -> str:
        return self.settings.topic(DEAD_LETTERS.name)

    async def publish(self, prediction: Prediction) -> None:
        """Publish as a worker does: its callback sealed with the key workers share."""
        await self.publish_as_is(sealed(prediction))

    async def publish_as_is(self, prediction: Prediction) -> None:
        """Publish without sealing anything, as anyone with access to the topic could."""
        await self.publisher.publish(PREDICTIONS, prediction, key=prediction.partition_key)

    async def publish_raw(self, value: bytes, *, key: bytes | None = None) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(self.predictions_topic, value, key=key)
        finally:
            await producer.stop()

    async def job(self, request_id: str) -> JobView | None:
        return await asyncio.to_thread(self.service.store.get, request_id)

    async def job_in_state(
        self, request_id: str, delivery_status: str, *, timeout: float = 20.0
    ) -> JobView:
        async def check() -> JobView | None:
            job = await self.job(request_id)
            return job if job is not None and job.delivery.status == delivery_status else None

        job = await eventually(check, timeout=timeout, what=f"{request_id} {delivery_status}")
        assert isinstance(job, JobView)
        return job


def sealed(prediction: Prediction) -> Prediction:
    """The prediction with its callback sealed as a worker with CALLBACK_SEAL_KEY seals it."""
    if prediction.callback is None or prediction.callback_seal is not None:
        return prediction
    seal = seal_callback(
        CALLBACK_SEAL_KEY.encode(), prediction.request_id, str(prediction.callback.url)
    )
    return prediction.model_copy(update={"callback_seal": seal})


def prediction(
    request_id: str,
    callback: str | None,
    *,
    variant: str = "production",
    label: str = "setosa",
) -> Prediction:
    return Prediction(
        request_id=request_id,
        model="iris",
        version=2 if variant == "shadow" else 1,
        variant=variant,
        status="ok",
        output=ClassifierOutput(label=label, probabilities={label: 0.9, "other": 0.1}),
        latency_ms=3.5,
        callback={"url": callback} if callback else None,
    )


async def http_get(url: str) -> httpx.Response:
    """A GET to one of our own endpoints on 127.0.0.1."""
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.get(url)
