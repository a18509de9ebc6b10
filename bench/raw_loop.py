"""The transport ceiling: the same request records produced and consumed, no model."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer

from bench.kafka_io import (
    CONSUMER_OPTIONS,
    GETMANY_MAX_RECORDS,
    GETMANY_TIMEOUT_MS,
    make_producer,
    send_all,
)
from bench.measure import CpuMeter, MachineCpuMeter, cpu_breakdown
from shared.kafka.admin import ensure_topics
from shared.kafka.codec import OutgoingRecord
from shared.topics import REQUESTS

DRAIN_TIMEOUT_SECONDS = 300.0


async def raw_loop(
    bootstrap: str,
    *,
    prefix: str,
    records: list[OutgoingRecord],
    partitions: int,
    meters: dict[str, CpuMeter],
) -> dict[str, Any]:
    """Messages per second from the first send to the last receive, with producer and
    consumer (in a consumer group, committing after every batch as the worker does)
    running at once in this event loop."""
    await ensure_topics(bootstrap, prefix=prefix, specs=[REQUESTS], partitions_override=partitions)
    topic = prefix + REQUESTS.name
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"{prefix}raw", **CONSUMER_OPTIONS
    )
    producer = make_producer(bootstrap)
    await consumer.start()
    await producer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        received = 0
        last_receive = 0.0

        async def consume() -> None:
            nonlocal received, last_receive
            while received < len(records):
                batch = await consumer.getmany(
                    timeout_ms=GETMANY_TIMEOUT_MS, max_records=GETMANY_MAX_RECORDS
                )
                if batch:
                    received += sum(len(items) for items in batch.values())
                    last_receive = time.perf_counter()
                    await consumer.commit()

        machine = MachineCpuMeter()
        machine.start()
        for meter in meters.values():
            meter.start()
        started = time.perf_counter()
        consuming = asyncio.create_task(consume())
        acknowledgements = await send_all(producer, topic, records)
        await asyncio.gather(*acknowledgements)
        await asyncio.wait_for(consuming, timeout=DRAIN_TIMEOUT_SECONDS)
        cpu = {name: meter.stop() for name, meter in meters.items()}
        machine_cpu = machine.stop()
        elapsed = last_receive - started
    finally:
        await producer.stop()
        await consumer.stop()
    return {
        "messages": len(records),
        "seconds": round(elapsed, 3),
        "per_second": round(len(records) / elapsed, 1),
        "cpu_seconds": cpu,
        **cpu_breakdown(cpu, seconds=elapsed, messages=len(records), machine=machine_cpu),
        "partitions": partitions,
        "record_bytes": round(
            sum(len(r.value) + sum(len(k) + len(v) for k, v in r.headers) for r in records)
            / len(records)
        ),
    }
