"""The serving half of `modelbus demo`: requests in, predictions out, signed webhooks received."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sklearn.datasets import load_iris

from services.cli.demo_feedback import report_quality, send_feedback
from services.cli.output import say
from services.delivery.receiver import create_receiver_app
from shared.contracts import Prediction, PredictionRequest
from shared.kafka.codec import decode, encode
from shared.latency import latency_summary
from shared.settings import ModelbusSettings
from shared.topics import PREDICTIONS, REQUESTS

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@dataclass
class Tally:
    """What the demo saw, keyed by request id."""

    sent_at: dict[str, float] = field(default_factory=dict)
    answered_at: dict[str, float] = field(default_factory=dict)
    delivered_at: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    variants: dict[str, int] = field(default_factory=dict)
    rejected_by_gateway: list[str] = field(default_factory=list)
    truth: dict[str, str] = field(default_factory=dict)
    """The true species of each valid request, for the feedback the demo sends."""
    lock: threading.Lock = field(default_factory=threading.Lock)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_receiver(secrets: list[str], tally: Tally) -> tuple[uvicorn.Server, int, Any]:
    def on_delivery(payload: dict[str, Any]) -> None:
        with tally.lock:
            tally.delivered_at.setdefault(str(payload["request_id"]), time.time())

    port = _free_port()
    app = create_receiver_app(secrets, on_delivery=on_delivery)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the demo's webhook receiver did not start")
        time.sleep(0.05)
    return server, port, app.state.stats


IRIS = load_iris()


def _inputs(rng: np.random.Generator) -> tuple[dict[str, float], str]:
    """A row of the iris data, and its true species."""
    index = rng.integers(len(IRIS.data))
    row = IRIS.data[index]
    inputs = {name: round(float(value), 2) for name, value in zip(FEATURES, row, strict=True)}
    return inputs, str(IRIS.target_names[IRIS.target[index]])


async def _watch_predictions(
    settings: ModelbusSettings, topic: str, tally: Tally, expected: int, stop: asyncio.Event
) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        **settings.kafka_security.client_options(),
        group_id=f"demo-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="latest",
    )
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        stop.set()  # ready: the sender may start
        while len(tally.answered_at) < expected:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    prediction: Prediction = decode(PREDICTIONS, record.value, record.headers)
                    if prediction.request_id not in tally.sent_at:
                        continue
                    tally.variants[prediction.variant] = (
                        tally.variants.get(prediction.variant, 0) + 1
                    )
                    if prediction.variant == "shadow":
                        continue
                    # When the worker produced it (the record's timestamp, this machine's
                    # clock), not when this busy process got round to reading it.
                    tally.answered_at.setdefault(prediction.request_id, record.timestamp / 1000)
                    if prediction.error is not None:
                        tally.errors[prediction.request_id] = prediction.error.code
    finally:
        await consumer.stop()


async def _send_through_gateway(
    gateway_url: str, api_key: str, callback: str, count: int, tally: Tally
) -> None:
    rng = np.random.default_rng(1)
    async with httpx.AsyncClient(
        base_url=gateway_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    ) as client:
        semaphore = asyncio.Semaphore(16)

        async def one(index: int) -> None:
            request_id = f"demo-http-{uuid.uuid4().hex[:12]}"
            inputs, tally.truth[request_id] = _inputs(rng)
            body = {"request_id": request_id, "inputs": inputs, "callback": {"url": callback}}
            async with semaphore:
                tally.sent_at[request_id] = time.time()
                response = await client.post("/v1/models/iris/predict", json=body)
            if response.status_code != 202:
                tally.sent_at.pop(request_id, None)
                tally.truth.pop(request_id, None)
                tally.rejected_by_gateway.append(f"{response.status_code} {response.text[:120]}")

        await asyncio.gather(*(one(index) for index in range(count)))
        bad = await client.post(
            "/v1/models/iris/predict", json={"inputs": {"sepal_length": "tall"}}
        )
        say(
            f"   a malformed request through the gateway: {bad.status_code} "
            f"{bad.json()['error']['message'][:110]}"
        )


async def _send_to_kafka(
    settings: ModelbusSettings, topic: str, callback: str, count: int, tally: Tally
) -> None:
    rng = np.random.default_rng(2)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        linger_ms=5,
        **settings.kafka_security.client_options(),
    )
    await producer.start()
    try:
        pending = []
        for index in range(count):
            inputs, species = _inputs(rng)
            invalid = index % 500 == 499
            if invalid:
                inputs["petal_width"] = 99.0  # far outside the training range: an error answer
            request = PredictionRequest(
                request_id=f"demo-kafka-{uuid.uuid4().hex[:12]}",
                model="iris",
                inputs=inputs,
                callback={"url": callback},
                routing_key=f"customer-{index % 200}",
            )
            record = encode(
                REQUESTS, request, key=request.partition_key, source="/demo", topic=topic
            )
            tally.sent_at[request.request_id] = time.time()
            if not invalid:
                tally.truth[request.request_id] = species
            pending.append(
                await producer.send(
                    record.topic, record.value, key=record.key, headers=record.headers
                )
            )
            if index % 200 == 199:
                await asyncio.sleep(0.05)  # a steady stream rather than one burst
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def run_serving(
    *,
    gateway_url: str,
    gateway_key: str,
    webhook_secrets: list[str],
    http_count: int,
    kafka_count: int,
    feedback_url: str,
    reader_key: str,
) -> None:
    settings = ModelbusSettings()
    tally = Tally()
    receiver, port, stats = _start_receiver(webhook_secrets, tally)
    callback = f"http://127.0.0.1:{port}/hooks/iris"
    total = http_count + kafka_count
    say(
        f"\n9. serving: {http_count} requests through the gateway, {kafka_count} straight to "
        f"Kafka, webhooks to {callback}"
    )
    ready = asyncio.Event()
    watcher = asyncio.create_task(
        _watch_predictions(settings, settings.topic(PREDICTIONS.name), tally, total, ready)
    )
    await asyncio.wait_for(ready.wait(), timeout=30)
    started = time.time()
    await asyncio.gather(
        _send_through_gateway(gateway_url, gateway_key, callback, http_count, tally),
        _send_to_kafka(settings, settings.topic(REQUESTS.name), callback, kafka_count, tally),
    )
    sent = len(tally.sent_at)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (  # noqa: ASYNC110  (polls two counters)
        len(tally.answered_at) < sent or len(tally.delivered_at) < sent
    ):
        await asyncio.sleep(0.25)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    receiver.should_exit = True
    elapsed = time.time() - started
    to_prediction = [
        (tally.answered_at[rid] - tally.sent_at[rid]) * 1000 for rid in tally.answered_at
    ]
    to_webhook = [
        (tally.delivered_at[rid] - tally.sent_at[rid]) * 1000
        for rid in tally.delivered_at
        if rid in tally.sent_at
    ]
    answer = latency_summary(to_prediction)
    webhook = latency_summary(to_webhook)
    say("\nReport (Kafka, services, receiver and load generator share this machine's cores)")
    say(f"  sent        {sent}  (+{len(tally.rejected_by_gateway)} refused by the gateway)")
    say(f"  answered    {len(tally.answered_at)}  variants {dict(sorted(tally.variants.items()))}")
    say(
        f"  delivered   {len(tally.delivered_at)}  signed webhooks; the receiver verified "
        f"{stats.verified} signatures and rejected {stats.rejected}"
    )
    say(
        f"  errors      {len(tally.errors)} error predictions "
        f"{sorted(set(tally.errors.values())) or ''}"
    )
    say(
        f"  latency to prediction  p50 {answer['p50_ms']} ms  p95 {answer['p95_ms']} ms  "
        f"p99 {answer['p99_ms']} ms  (until the worker produced it)"
    )
    say(
        f"  latency to webhook     p50 {webhook['p50_ms']} ms  p95 {webhook['p95_ms']} ms  "
        f"p99 {webhook['p99_ms']} ms  (until the receiver verified it)"
    )
    say(f"  wall time   {elapsed:.1f} s")
    missing = sent - len(tally.answered_at), sent - len(tally.delivered_at)
    if any(missing):
        raise SystemExit(f"demo incomplete: {missing[0]} unanswered, {missing[1]} undelivered")
    say("  every request answered and delivered")
    labelled = await send_feedback(settings, gateway_url, gateway_key, tally.truth)
    await report_quality(feedback_url, reader_key, expected=labelled, since=started)
