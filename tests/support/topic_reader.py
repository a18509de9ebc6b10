"""Read what a topic holds, as any third-party consumer would."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer


async def read_records(
    bootstrap: str, topic: str, *, expected: int, timeout: float = 20.0
) -> list[Any]:
    """Records from the start of `topic` until `expected` arrived or `timeout` passed."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


def read_records_sync(
    bootstrap: str, topic: str, *, expected: int, timeout: float = 20.0
) -> list[Any]:
    """The same, for synchronous tests."""
    return asyncio.run(read_records(bootstrap, topic, expected=expected, timeout=timeout))
