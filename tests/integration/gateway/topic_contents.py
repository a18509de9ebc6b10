"""Everything a topic holds right now: reads to the end offsets, so no timeout decides."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer


async def _read_to_end(bootstrap: str, topic: str, timeout: float) -> list[Any]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        assert topic in await consumer.topics(), f"topic {topic} does not exist"
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while not consumer.assignment():
            assert time.monotonic() < deadline, f"no partitions of {topic} were assigned"
            await asyncio.sleep(0.05)
        partitions = sorted(consumer.assignment())
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


def read_to_end(bootstrap: str, topic: str, *, timeout: float = 20.0) -> list[Any]:
    """All records of `topic` as of now, from every partition."""
    return asyncio.run(_read_to_end(bootstrap, topic, timeout))
