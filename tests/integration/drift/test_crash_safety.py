"""SIGKILL the drift process again and again mid-stream: nothing forgotten, nothing counted
twice, and the one drift in the stream is alerted exactly once."""

from __future__ import annotations

import asyncio
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from devtools.kafka_broker import KafkaBroker
from devtools.live_registry import LiveRegistry
from shared.kafka.admin import ensure_topics
from shared.kafka.publisher import Publisher
from shared.topics import DRIFT_ALERTS, DRIFT_STATE, REQUESTS
from tests.integration.drift.conftest import DRIFT_TOPICS, FEATURES, MODEL, drift_settings
from tests.integration.drift.support import gaussian_rows, read_alerts, requests_for
from tests.support.service_process import ServiceProcess
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka]

STATIONARY, SHIFTED = 3000, 5000
KILLS = 4
CHUNK = 250
WORKER = "from services.drift.entrypoints.worker import run; run()"
APPLIED = re.compile(r"^modelbus_drift_sketches_applied_total (\d+)", re.MULTILINE)


async def committed_state(bootstrap: str, topic: str) -> dict[str, Any] | None:
    """The latest committed state of the model's version 1, read as a plain client would."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        group_id=None,
    )
    await consumer.start()
    latest = None
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch:
                return latest
            for records in batch.values():
                for record in records:
                    if record.key == f"{MODEL}/1".encode():
                        latest = json.loads(record.value)["state"]
    finally:
        await consumer.stop()


def measured(state: dict[str, Any] | None) -> int:
    data = (state or {}).get("monitor", {}).get("data")
    return int(data["events"]) if data else 0


async def test_sigkills_mid_stream_lose_nothing_and_alert_once(
    kafka_broker: KafkaBroker, topic_prefix: str, registry: LiveRegistry, tmp_path: Path
) -> None:
    await ensure_topics(
        kafka_broker.bootstrap, prefix=topic_prefix, specs=DRIFT_TOPICS, partitions_override=3
    )
    settings = {
        name: str(value)
        for name, value in drift_settings(kafka_broker, topic_prefix, registry).items()
        if not name.startswith("_") and name != "drift_health_port"
    } | {"sketch_max_records": "200"}
    service = ServiceProcess(
        name="drift",
        code=WORKER,
        health_port_setting="drift_health_port",
        progress=APPLIED,
        settings=settings,
        workdir=tmp_path,
    )
    rows = gaussian_rows(STATIONARY, features=FEATURES, seed=11) + gaussian_rows(
        SHIFTED, features=FEATURES, seed=12, shift={"x2": 1.0}
    )
    requests = requests_for(MODEL, rows)
    publisher = Publisher(kafka_broker.bootstrap, source="test", topic_prefix=topic_prefix)
    await publisher.start()
    chooser = random.Random(5)
    state_topic = topic_prefix + DRIFT_STATE.name
    try:
        await service.start()
        sent = 0

        async def send_some(count: int) -> None:
            nonlocal sent
            chunk = requests[sent : sent + count]
            for start in range(0, len(chunk), CHUNK):
                await asyncio.gather(
                    *(
                        publisher.publish(REQUESTS, r, key=r.request_id)
                        for r in chunk[start : start + CHUNK]
                    )
                )
            sent += len(chunk)

        share = len(requests) // (KILLS + 1)
        for _ in range(KILLS):
            await send_some(share)
            await service.wait_for_progress()
            await asyncio.sleep(chooser.uniform(0.0, 0.5))
            await service.kill()
            await service.start()
        await send_some(len(requests) - sent)

        async def all_measured() -> bool:
            state = await committed_state(kafka_broker.bootstrap, state_topic)
            return measured(state) >= len(requests)

        await eventually(all_measured, timeout=120, what="every request measured")
        state = await committed_state(kafka_broker.bootstrap, state_topic)
        alerts = await read_alerts(kafka_broker.bootstrap, topic_prefix + DRIFT_ALERTS.name)
    finally:
        await service.ensure_gone()
        await publisher.stop()

    assert len(service.incarnations) == KILLS + 1
    assert measured(state) == len(requests)  # each request counted once, none lost
    found = [(a.status, a.feature, a.method, round(a.statistic, 1)) for a in alerts]
    assert [(a.status, a.feature) for a in alerts] == [("open", "x2")], found
