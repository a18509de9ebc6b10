"""The transport ceiling: produce and consume the same messages on the same broker, no model."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.kafka.admin import ensure_topics
from shared.topics import REQUESTS


async def raw_loop(
    bootstrap: str, *, prefix: str, records: list[tuple[bytes, bytes]], partitions: int
) -> dict[str, Any]:
    """Messages per second from first send to last receive, producing and consuming at once."""
    spec = REQUESTS
    await ensure_topics(bootstrap, prefix=prefix, specs=[spec], partitions_override=partitions)
    topic = prefix + spec.name
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{prefix}raw",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await consumer.start()
    await producer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        received = 0
        started = time.perf_counter()

        async def consume() -> None:
            nonlocal received
            while received < len(records):
                batch = await consumer.getmany(timeout_ms=200, max_records=500)
                received += sum(len(items) for items in batch.values())
                if batch:
                    await consumer.commit()

        consuming = asyncio.create_task(consume())
        sends = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*sends)
        await asyncio.wait_for(consuming, timeout=300)
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
        await consumer.stop()
    return {
        "messages": len(records),
        "seconds": round(elapsed, 3),
        "per_second": round(len(records) / elapsed, 1),
    }
