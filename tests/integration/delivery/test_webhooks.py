"""Predictions on the real broker become signed webhooks: delivered, retried, or dead-lettered."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.delivery.adapters.signing import webhook_id_for
from shared.kafka.codec import decode
from shared.topics import DEAD_LETTERS
from tests.integration.delivery.support import (
    http_get,
    prediction,
    run_receiver,
)
from tests.support.topic_reader import read_records
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka]


async def test_a_prediction_is_delivered_once_with_a_verified_signature(
    delivery_factory: Callable[..., Any], webhook_secret: str
) -> None:
    with run_receiver(webhook_secret) as receiver:
        async with delivery_factory(
            webhook_allowlist=["127.0.0.1"], delivery_health_port=0
        ) as harness:
            sent = prediction("job-1", receiver.hook("job-1"))
            await harness.publish(sent)
            await harness.publish(sent)  # the same record again, as after a producer retry

            job = await harness.job_in_state("job-1", "delivered")

            async def both_recorded() -> bool:
                return bool(harness.service.metrics.predictions_recorded == 2)

            await eventually(both_recorded, what="the duplicate to be consumed")
            health = f"http://127.0.0.1:{harness.service.health_port}"
            ready = await http_get(f"{health}/readyz")
            alive = await http_get(f"{health}/healthz")
            metrics = (await http_get(f"{health}/metrics")).text
            job = await harness.job("job-1") or job

    # The receiver verified the signature with standardwebhooks, once; the duplicate was dropped.
    assert receiver.stats.verified == 1 and receiver.stats.rejected == 0
    assert receiver.stats.accepted_ids == [webhook_id_for("job-1")]
    assert receiver.payloads == [json.loads(sent.model_dump_json())]
    assert job.status == "done"
    assert job.delivery.callback_url == receiver.hook("job-1")
    assert [(a.attempt, a.status_code, a.error) for a in job.delivery.attempts] == [(1, 204, None)]
    assert job.delivery.next_attempt_at is None
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert alive.status_code == 200
    assert "modelbus_delivery_webhooks_delivered_total 1" in metrics
    assert "modelbus_delivery_predictions_recorded_total 2" in metrics
    assert 'modelbus_delivery_webhook_latency_seconds_bucket{le="+Inf"} 1' in metrics
    assert "modelbus_delivery_backlog 0" in metrics


async def test_a_failing_receiver_gets_the_webhook_on_the_third_attempt(
    delivery_factory: Callable[..., Any], webhook_secret: str
) -> None:
    with run_receiver(webhook_secret, fail_first=2) as receiver:
        async with delivery_factory(webhook_allowlist=["127.0.0.0/8"], max_attempts=5) as harness:
            await harness.publish(prediction("job-retry", receiver.hook("flaky")))
            job = await harness.job_in_state("job-retry", "delivered")
            failed_attempts = harness.service.metrics.failed_attempts

    attempts = job.delivery.attempts
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 503), (2, 503), (3, 204)]
    assert all(a.error and a.error.startswith("HTTP 503") for a in attempts[:2])
    assert attempts[0].attempted_at < attempts[1].attempted_at < attempts[2].attempted_at
    assert all(a.duration_ms > 0 for a in attempts)
    assert receiver.stats.failed_on_purpose == 2 and receiver.stats.accepted == 1
    assert receiver.stats.rejected == 0
    assert failed_attempts == 2


async def test_a_receiver_that_always_fails_ends_dead_and_dead_lettered(
    delivery_factory: Callable[..., Any], webhook_secret: str
) -> None:
    with run_receiver(webhook_secret, fail_first=10**9) as receiver:
        async with delivery_factory(webhook_allowlist=["127.0.0.1"], max_attempts=3) as harness:
            sent = prediction("job-doomed", receiver.hook("down"))
            await harness.publish(sent)
            job = await harness.job_in_state("job-doomed", "dead")
            records = await read_records(
                harness.bootstrap, harness.dead_letters_topic, expected=1, timeout=15
            )

            async def dead_letter_marked() -> bool:
                view = await harness.job("job-doomed")
                return view is not None and view.delivery.next_attempt_at is None

            await eventually(dead_letter_marked, what="the dead letter to be marked published")
            metrics = await harness.service.metrics_text()

    assert [a.status_code for a in job.delivery.attempts] == [503, 503, 503]
    assert receiver.stats.failed_on_purpose == 3
    assert job.delivery.last_error is not None
    assert "gave up after 3 attempts" in job.delivery.last_error
    assert len(records) == 1
    letter = decode(DEAD_LETTERS, records[0].value, records[0].headers)
    assert letter.error_code == "webhook_exhausted"
    assert letter.key == "job-doomed" and records[0].key == b"job-doomed"
    assert letter.service == "delivery"
    assert letter.source_topic == harness.predictions_topic
    assert "HTTP 503" in letter.error_message
    assert letter.value is not None
    assert json.loads(base64.b64decode(letter.value)) == json.loads(sent.model_dump_json())
    assert 'modelbus_delivery_webhooks_dead_total{reason="exhausted"} 1' in metrics


async def test_a_taken_health_port_fails_the_start_and_leaves_nothing_running(
    delivery_factory: Callable[..., Any],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"cannot listen on 127.0.0.1:{port}"):
            async with delivery_factory(delivery_health_port=port):
                pass
    leftovers = [task for task in asyncio.all_tasks() if task.get_name().startswith("delivery-")]
    assert leftovers == []


BURST = 300
PREDICTION_PARTITIONS = 2  # the delivery_factory fixture creates its topics with 2


async def test_a_burst_is_delivered_once_each_and_its_offsets_committed(
    delivery_factory: Callable[..., Any], webhook_secret: str
) -> None:
    with run_receiver(webhook_secret) as receiver:
        async with delivery_factory(webhook_allowlist=["127.0.0.1"], max_concurrency=8) as harness:
            ids = [f"burst-{n:03d}" for n in range(BURST)]
            await asyncio.gather(*(harness.publish(prediction(i, receiver.hook(i))) for i in ids))

            async def all_delivered() -> bool:
                return receiver.stats.accepted >= BURST

            await eventually(all_delivered, timeout=30, what=f"{BURST} webhooks")
            views = [await harness.job(i) for i in ids]
            connections = harness.service.sender.network.connect_attempts
        committed = await committed_offsets(harness)

    assert sorted(receiver.stats.accepted_ids) == sorted(webhook_id_for(i) for i in ids)
    assert receiver.stats.received == BURST
    assert all(
        v is not None and [a.status_code for a in v.delivery.attempts] == [204] for v in views
    )
    assert connections <= 8  # kept alive and reused, never one per webhook
    # Recorded predictions had their offsets committed (at stop at the latest).
    assert committed.committed == committed.end and sum(committed.end.values()) == BURST


@dataclass
class Offsets:
    committed: dict[int, int]
    end: dict[int, int]


async def committed_offsets(harness: Any) -> Offsets:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=harness.bootstrap,
        group_id=harness.settings.consumer_group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(harness.predictions_topic, p) for p in range(PREDICTION_PARTITIONS)
        ]
        end = await consumer.end_offsets(partitions)
        committed = {tp.partition: (await consumer.committed(tp)) or 0 for tp in partitions}
    finally:
        await consumer.stop()
    return Offsets(committed=committed, end={tp.partition: end[tp] for tp in partitions})
