"""The serving path as separate processes: gateway -> Kafka -> worker -> delivery -> webhook."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook, WebhookVerificationError

from devtools.kafka_broker import KafkaBroker
from devtools.live_registry import live_registry
from devtools.ports import free_port
from devtools.sample_models import iris_classifier
from devtools.service_process import MODELBUS, ServiceProcess, clean_env, start_service
from services.delivery.adapters.signing import new_webhook_secret
from shared.contracts import PredictionRequest
from shared.kafka.admin import ensure_topics
from shared.kafka.publisher import Publisher
from shared.topics import REQUESTS

pytestmark = [pytest.mark.kafka]
INPUTS = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@dataclass
class Captured:
    """Webhooks exactly as they arrived: raw body and headers."""

    deliveries: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies_for(self, request_id: str) -> list[tuple[bytes, dict[str, str]]]:
        with self.lock:
            return [item for item in self.deliveries if request_id.encode() in item[0]]


@dataclass
class Stack:
    gateway_url: str
    api_key: str
    secret: str
    captured: Captured
    callback: str
    bootstrap: str
    topic_prefix: str


def _capturing_receiver(captured: Captured) -> FastAPI:
    """Takes everything; verification is the test's job, with the standardwebhooks library."""
    app = FastAPI()

    @app.post("/hooks")
    async def hook(request: Request) -> Response:
        body = await request.body()
        with captured.lock:
            captured.deliveries.append((body, dict(request.headers)))
        return Response(status_code=204)

    return app


@pytest.fixture
def stack(kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path) -> Iterator[Stack]:
    asyncio.run(ensure_topics(kafka_broker.bootstrap, prefix=topic_prefix))
    captured = Captured()
    receiver_port = free_port()
    receiver = uvicorn.Server(
        uvicorn.Config(
            _capturing_receiver(captured),
            host="127.0.0.1",
            port=receiver_port,
            log_level="warning",
        )
    )
    threading.Thread(target=receiver.run, daemon=True).start()
    secret = new_webhook_secret()
    processes: list[ServiceProcess] = []
    with live_registry(
        data_dir=tmp_path, kafka_bootstrap=kafka_broker.bootstrap, topic_prefix=topic_prefix
    ) as registry:
        registry.deploy("iris", [iris_classifier()])
        common = {
            "MODELBUS_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
            "MODELBUS_TOPIC_PREFIX": topic_prefix,
            "MODELBUS_REGISTRY_URL": registry.url,
            "MODELBUS_REGISTRY_API_KEY": registry.keys["reader"],
            "MODELBUS_JOBS_DATABASE_URL": f"sqlite:///{tmp_path / 'jobs.db'}",
            "MODELBUS_CONSUMER_GROUP": f"{topic_prefix}group",
            # Workers seal callbacks, delivery sends only to sealed (or gateway) ones.
            "MODELBUS_CALLBACK_SEAL_KEY": "callback-seal-key-for-tests-0123456789",
        }
        ports = {name: free_port() for name in ("gateway", "worker", "delivery")}
        try:
            for name, command, env, port in (
                (
                    "worker",
                    ("inference", "run"),
                    {"MODELBUS_WORKER_PORT": str(ports["worker"])},
                    ports["worker"],
                ),
                (
                    "delivery",
                    ("delivery", "run"),
                    {
                        "MODELBUS_DELIVERY_HEALTH_PORT": str(ports["delivery"]),
                        "MODELBUS_WEBHOOK_SECRET": secret,
                        "MODELBUS_WEBHOOK_ALLOWLIST": "127.0.0.1",
                        "MODELBUS_CONSUMER_GROUP": f"{topic_prefix}delivery",
                    },
                    ports["delivery"],
                ),
                (
                    "gateway",
                    ("gateway", "serve"),
                    {"MODELBUS_GATEWAY_PORT": str(ports["gateway"])},
                    ports["gateway"],
                ),
            ):
                process = start_service(
                    name,
                    [str(MODELBUS), *command],
                    env=clean_env(common | env),
                    log_path=tmp_path / f"{name}.log",
                    base_url=f"http://127.0.0.1:{port}",
                    cwd=tmp_path,
                )
                processes.append(process)
                process.wait_healthy("/readyz")
            yield Stack(
                gateway_url=f"http://127.0.0.1:{ports['gateway']}",
                api_key=registry.keys["reader"],
                secret=secret,
                captured=captured,
                callback=f"http://127.0.0.1:{receiver_port}/hooks",
                bootstrap=kafka_broker.bootstrap,
                topic_prefix=topic_prefix,
            )
        finally:
            for process in reversed(processes):
                process.stop()
            receiver.should_exit = True


def _wait_for(condition: Any, *, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_gateway_request_is_answered_and_delivered_signed(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    request_id = f"e2e-{uuid.uuid4().hex[:8]}"
    body = {"request_id": request_id, "inputs": INPUTS, "callback": {"url": stack.callback}}
    accepted = httpx.post(
        f"{stack.gateway_url}/v1/models/iris/predict", json=body, headers=headers, timeout=10
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status_url"] == f"/v1/jobs/{request_id}"

    raw, received_headers = _wait_for(lambda: stack.captured.bodies_for(request_id))[0]
    payload = Webhook(stack.secret).verify(raw, received_headers)
    assert payload["request_id"] == request_id
    assert payload["status"] == "ok" and payload["variant"] == "production"
    assert payload["output"]["label"] == "setosa"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(raw, received_headers)

    def delivered() -> dict[str, Any] | None:
        job = httpx.get(f"{stack.gateway_url}/v1/jobs/{request_id}", headers=headers).json()
        return job if job["delivery"]["status"] == "delivered" else None

    job = _wait_for(delivered)
    assert job["status"] == "done"
    assert job["prediction"]["output"]["label"] == "setosa"
    assert [attempt["status_code"] for attempt in job["delivery"]["attempts"]] == [204]


def test_producer_publishing_straight_to_kafka_gets_its_webhook(stack: Stack) -> None:
    request = PredictionRequest(
        request_id=f"direct-{uuid.uuid4().hex[:8]}",
        model="iris",
        inputs=INPUTS | {"petal_length": 5.5, "petal_width": 2.1, "sepal_length": 6.7},
        callback={"url": stack.callback},  # type: ignore[arg-type]
    )

    async def publish() -> None:
        publisher = Publisher(stack.bootstrap, source="tests", topic_prefix=stack.topic_prefix)
        await publisher.start()
        try:
            await publisher.publish(REQUESTS, request, key=request.partition_key)
        finally:
            await publisher.stop()

    asyncio.run(publish())
    raw, received_headers = _wait_for(lambda: stack.captured.bodies_for(request.request_id))[0]
    payload = Webhook(stack.secret).verify(raw, received_headers)
    assert payload["output"]["label"] == "virginica"
